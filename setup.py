"""maddpg-tf: MADDPG with discrete gradient estimators, in TensorFlow 2 / Keras."""

import setuptools

# Compatible ranges, so that `pip install maddpg-tf` fits beside a researcher's own stack; the one set known
# to install cleanly together and pass the suite on Python 3.11 is pinned in constraints.txt, which the
# README's two commands and CI install with (`-c constraints.txt`). The lower bounds are those pins (what we
# know works); the upper bound is the next major release (for a 0.x release, the next minor), or tighter
# where a newer release is known to break something, as said beside it.
INSTALL_REQUIRES = [
    # TensorFlow Probability supports one TensorFlow minor at a time (a new TF minor has broken TFP before:
    # TFP 0.23 under TF 2.16's Keras 3), and tf-keras is released in step with TF's minor; so the three move
    # together, and each new pairing is checked before the range is widened.
    "tensorflow>=2.21.0,<2.22",
    "tf-keras>=2.21.0,<2.22",  # TFP 0.25 refuses to import without it; our own models use Keras 3.
    "tensorflow-probability>=0.25.0,<0.26",
    "keras>=3.15.1,<4",
    "tensorboard>=2.21.0,<3",  # TF 2.21 no longer installs it; summaries, hparams and event protos
    "gymnasium>=1.4.0,<2",
    # The fast backends (maddpg_tf/envs/fast_*.py) reproduce these releases' dynamics step for step and, with
    # the renderer, import their internals; a minor release has changed LBF's food rule before (FACTS), so
    # a new one is checked against tests/test_fast_envs.py before the range is widened.
    "lbforaging>=2.0.0,<2.1",
    "rware>=2.0.0,<2.1",
    "numpy>=2.4.6,<3",
    "scipy>=1.17.1,<2",
    "ml-collections>=1.1.0,<2",
    "absl-py>=2.5.1,<3",
    "tqdm>=4.70.1,<5",
    "numba>=0.68.1,<0.69",     # the fast backends' kernels; numba brings the llvmlite it was built with
    "networkx>=3.6.1,<4",      # the fast RWARE backend's conflict resolution (as rware's own)
    "pillow>=13.0.0,<14",      # frames (rendering) and PNGs, on the training path (TensorBoard episodes)
    "imageio>=2.38.2,<3",      # GIFs (TensorBoard episodes, maddpg-evaluate --video=x.gif)
]

# What one program needs beyond the core, by extra. A program checks its extra before it starts work and,
# when something is missing, says in one line which extra to install (maddpg_tf/extras.py, the same names).
PLOTS = ["matplotlib>=3.11.2,<4"]  # figures: maddpg-reproduce's tables and figures, maddpg-estimator-lab
EXTRAS = {
    "plots": PLOTS,
    "grid": ["ray[default]>=2.60.0,<3"] + PLOTS,  # maddpg-reproduce: runs as Ray tasks, then its figures
    # maddpg-search: keras-tuner's Bayesian oracle (it needs scikit-learn, as its [bayesian] extra says) served
    # over gRPC. tuner.py uses keras_tuner.src internals (the oracle's protos), which a minor release may move.
    "search": ["keras-tuner[bayesian]>=1.4.8,<1.5", "scikit-learn>=1.9.1,<2", "grpcio>=1.85.3,<2"],
    # The multi-particle tasks (maddpg_tf/envs/mpe.py); pygame-ce is mpe2's renderer.
    "mpe": ["mpe2>=1.1.1,<2", "pettingzoo>=1.27.0,<2", "pygame-ce>=2.5.8,<3"],
    "video": ["imageio-ffmpeg>=0.8.1,<0.9"],  # MP4 (its wheel ships the ffmpeg binary)
    "wandb": ["wandb>=0.31,<1"],  # config.log.to=...,wandb (maddpg_tf/run/loggers.py)
    "mlflow": ["mlflow-skinny>=3.18,<4"],  # config.log.to=...,mlflow: the client, no server
}
# The CUDA build of the pinned TensorFlow: its [and-cuda] extra brings the CUDA and cuDNN libraries as pip
# packages (the plain wheel finds a GPU only where a system CUDA exists, and trains on the CPU without a word
# otherwise). The same range as the core's tensorflow; no module of ours imports anything of it, so it is
# no program's requirement (maddpg_tf/extras.py INSTALL_ONLY) and stays out of [all] and [test]: gigabytes
# of CUDA libraries that a machine without a GPU cannot use.
GPU = ["tensorflow[and-cuda]>=2.21.0,<2.22"]
EXTRAS["all"] = sorted({requirement for extra in EXTRAS.values() for requirement in extra})
EXTRAS["gpu"] = GPU
EXTRAS["test"] = EXTRAS["all"] + [
    "pytest>=9.2.0,<10", "pytest-xdist>=3.8.0,<4",  # the suite on every core (pytest.ini)
    "hypothesis>=6.170.27,<7",  # generated bad input (tests/test_generated_inputs.py)
    # rliable is the reference the aggregate statistics are checked against (tests/test_aggregate.py); it
    # imports only with arch < 8 and pandas < 3.
    "rliable>=1.2.0,<2", "arch>=7.2.0,<8", "pandas>=2.3.3,<3",
]

setuptools.setup(
    name="maddpg-tf",
    version="0.1.0",
    description="MADDPG with discrete gradient estimators (STGS, TAGS, GRMCK, GST, ...) in TensorFlow 2",
    # The library and the estimators only: configs/ (presets) and tools/ (scripts, benchmarks) stay in the
    # source tree, so no top-level `configs` or `tools` package lands in site-packages.
    packages=setuptools.find_packages(include=["maddpg_tf", "maddpg_tf.*", "estimators", "estimators.*"]),
    package_data={"maddpg_tf": ["data/*.csv"]},
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "maddpg-train=maddpg_tf.cli.train:run",
            "maddpg-search=maddpg_tf.cli.search:run",
            "maddpg-bench-estimators=maddpg_tf.cli.bench_estimators:run",
            "maddpg-reproduce=maddpg_tf.cli.reproduce:run",
            "maddpg-evaluate=maddpg_tf.cli.evaluate:run",
            "maddpg-estimator-lab=maddpg_tf.cli.lab:run",
            "maddpg-compare=maddpg_tf.cli.compare:run",
        ],
    },
)

"""maddpg-tf: MADDPG with discrete gradient estimators, in TensorFlow 2 / Keras."""

import setuptools

# One pinned set known to install cleanly together on Python 3.11 (see README, "Dependencies").
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf-keras==2.21.0",  # TFP 0.25 refuses to import without it; our own models use Keras 3.
    "tensorflow-probability==0.25.0",
    "keras==3.15.1",
    "keras-tuner[bayesian]==1.4.8",
    "tensorboard==2.21.0",
    "gymnasium==1.4.0",
    "lbforaging==2.0.0",
    "rware==2.0.0",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "ml-collections==1.1.0",
    "absl-py==2.5.1",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
    "ray[default]==2.60.0",  # maddpg-reproduce runs its grids as Ray tasks (local or a cluster)
    "numba==0.68.1",          # the fast LBF/RWARE backends' kernels (maddpg_tf/envs/fast_*.py)
    "llvmlite==0.50.0",       # numba's compiler
    "pettingzoo==1.27.0",     # any ParallelEnv as a training environment (maddpg_tf/envs/pettingzoo.py)
    "mpe2==1.1.1",            # the multi-particle tasks (maddpg_tf/envs/mpe.py)
    "pygame-ce==2.5.8",       # mpe2's renderer
    "imageio==2.38.2",        # videos of trained policies (GIF, MP4)
    "imageio-ffmpeg==0.8.1",  # its wheel ships the ffmpeg binary MP4 needs
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
    # rliable is the reference the aggregate statistics are checked against (tests/test_aggregate.py); it
    # imports only with arch < 8 and pandas < 3.
    extras_require={"test": ["pytest==9.2.0", "pytest-xdist==3.8.0",  # the suite on every core (pytest.ini)
                             "rliable==1.2.0", "arch==7.2.0", "pandas==2.3.3",
                             "hypothesis==6.170.27"],  # generated bad input (tests/test_generated_inputs.py)
                    "wandb": ["wandb>=0.31,<1"],  # config.log.to=...,wandb (maddpg_tf/run/loggers.py)
                    "mlflow": ["mlflow-skinny>=3.18,<4"]},  # config.log.to=...,mlflow: the client, no server
    entry_points={
        "console_scripts": [
            "maddpg-train=maddpg_tf.cli.train:run",
            "maddpg-search=maddpg_tf.cli.search:run",
            "maddpg-bench-estimators=maddpg_tf.cli.bench_estimators:run",
            "maddpg-reproduce=maddpg_tf.cli.reproduce:run",
            "maddpg-evaluate=maddpg_tf.cli.evaluate:run",
            "maddpg-estimator-lab=maddpg_tf.cli.lab:run",
        ],
    },
)

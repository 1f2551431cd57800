"""What maddpg-tf declares it needs (setup.py), the set it is known to work with (constraints.txt), and the
programs' one line when an extra is missing (maddpg_tf/extras.py).

- Every third-party package that `maddpg_tf/`, `estimators/` or `tests/` imports is declared in setup.py
  (the library's in `install_requires` or an extra, the tests' anywhere in `[test]`), found by parsing the
  sources (the import contract's parser; nothing is imported).
- Each optional module (`extras.OPTIONAL`) is installed by the extra that its message names, and the core
  modules (the training run, every program's module) import none of them at their tops.
- constraints.txt pins every declared distribution with `==`, inside setup.py's range.
- The `gpu` extra is the pinned TensorFlow's CUDA build (`tensorflow[and-cuda]`, the core's range), outside
  `[all]` and `[test]`; the CUDA libraries it brings are pinned inside TensorFlow's own ranges for them.
- A program whose extra is missing ends with one line naming the extra and status 2, having written
  nothing; simulated with a `None` entry in `sys.modules`, which `import` treats as not installed.
"""

import importlib.metadata
import os
import pathlib
import re
import runpy
import subprocess
import sys
from unittest import mock

import pytest

from maddpg_tf import extras
from tests.test_import_contract import PACKAGES, find_modules, read_imports, top_level_heavy

REPO = pathlib.Path(__file__).resolve().parents[1]

# Import names that differ from their distribution's name after PEP 503 normalisation (lower case, runs of
# "-", "_", "." as one "-"). Everything else is looked up under its own name.
DISTRIBUTION_OF = {
    "absl": "absl-py",
    "PIL": "pillow",
    "grpc": "grpcio",
    "sklearn": "scikit-learn",
    "pygame": "pygame-ce",
    "mlflow": "mlflow-skinny",  # the client alone (full mlflow adds a server we do not use)
}


def normalise(name):
  return re.sub(r"[-_.]+", "-", name).lower()


def distribution_of(module):
  return normalise(DISTRIBUTION_OF.get(module, module))


def declared():
  """(install_requires, {extra: requirements}) as setup.py passes them to setuptools.setup."""
  captured = {}
  with mock.patch("setuptools.setup", lambda **kwargs: captured.update(kwargs)):
    runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
  return captured["install_requires"], captured["extras_require"]


REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?((?:\s*(?:>=|<|==)\s*[0-9][0-9.]*\s*,?)*)$")


def parse_requirement(text):
  """(normalised name, [(operator, version tuple)]): the forms setup.py uses (>=, <, ==, numeric versions)."""
  match = REQUIREMENT.match(text.strip())
  assert match, f"requirement {text!r} is not of the form name[extras]>=x,<y"
  clauses = [re.match(r"\s*(>=|<|==)\s*([0-9.]+)", clause).groups()
             for clause in match.group(3).split(",") if clause.strip()]
  return normalise(match.group(1)), [(op, tuple(int(part) for part in version.split("."))) for op, version in clauses]


def satisfies(version, clauses):
  def padded(a, b):
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
  checks = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "==": lambda a, b: a == b}
  return all(checks[op](*padded(version, bound)) for op, bound in clauses)


def names(requirements):
  return {parse_requirement(requirement)[0] for requirement in requirements}


def third_party_imports(root, packages, first_party):
  """{top-level module: sorted importing modules} of every import in `packages` that is neither the
  standard library nor first party."""
  found = {}
  _, external, _ = read_imports(find_modules(root, packages))
  for edge in external:
    top = edge.target.split(".")[0]
    if top not in sys.stdlib_module_names and top not in first_party:
      found.setdefault(top, set()).add(edge.source)
  return {top: sorted(sources) for top, sources in found.items()}


# ---- what is declared ------------------------------------------------------------------------------------

def test_every_package_the_library_imports_is_declared():
  core, extra_requirements = declared()
  everything = names(core) | {name for reqs in extra_requirements.values() for name in names(reqs)}
  imported = third_party_imports(REPO, PACKAGES, set(PACKAGES))
  assert {"tensorflow", "numpy", "PIL", "ray", "keras_tuner"} <= set(imported)  # the parser sees imports
  undeclared = {top: sources for top, sources in imported.items() if distribution_of(top) not in everything}
  assert undeclared == {}, f"imported but declared nowhere in setup.py: {undeclared}"


def test_the_library_needs_no_extra_outside_the_optional_modules():
  core, _ = declared()
  imported = third_party_imports(REPO, PACKAGES, set(PACKAGES))
  optional_only = {top: sources for top, sources in imported.items()
                   if distribution_of(top) not in names(core) and top not in extras.OPTIONAL}
  assert optional_only == {}, ("imported, declared only in an extra, but no program checks for it "
                               f"(add it to maddpg_tf/extras.py OPTIONAL): {optional_only}")


def test_every_package_the_tests_import_is_declared_in_the_test_extra():
  core, extra_requirements = declared()
  first_party = set(PACKAGES) | {"tests", "tools", "configs"} | {p.stem for p in (REPO / "tests").glob("*.py")}
  imported = third_party_imports(REPO, ("tests",), first_party)
  assert {"pytest", "hypothesis"} <= set(imported)
  test_names = names(core) | names(extra_requirements["test"])
  undeclared = {top: sources for top, sources in imported.items() if distribution_of(top) not in test_names}
  assert undeclared == {}, f"imported by the tests but not installed by [test]: {undeclared}"


def test_each_optional_module_comes_with_the_extra_its_message_names():
  core, extra_requirements = declared()
  assert set(extras.EXTRAS) | set(extras.INSTALL_ONLY) == set(extra_requirements) - {"all", "test"}
  assert not set(extras.EXTRAS) & set(extras.INSTALL_ONLY)
  for module, (label, extra) in extras.OPTIONAL.items():
    assert distribution_of(module) in names(extra_requirements[extra]), f"{module}: not in [{extra}]"
    assert distribution_of(module) not in names(core), f"{module} is a core requirement, not an extra's"
  for extra in extras.EXTRAS:
    assert names(extra_requirements[extra]) <= names(extra_requirements["all"]) <= names(extra_requirements["test"])


def test_the_core_imports_no_optional_module_at_its_top():
  """A core install trains and evaluates, and every program starts (to say which extra it lacks): none of
  their modules imports an optional package at its top, itself or through our modules."""
  modules = find_modules(REPO, PACKAGES)
  internal, external, _ = read_imports(modules)
  heavy = top_level_heavy(internal, external, extras.OPTIONAL)
  core = [m for m in modules if m.split(".")[:2] in (["maddpg_tf", "agent"], ["maddpg_tf", "envs"],
                                                      ["maddpg_tf", "media"], ["maddpg_tf", "run"],
                                                      ["maddpg_tf", "cli"])]
  core += ["maddpg_tf.config", "maddpg_tf.extras", "estimators"]
  assert "maddpg_tf.run.experiment" in core and "maddpg_tf.cli.reproduce" in core
  assert {m: sorted(heavy[m]) for m in core if heavy.get(m)} == {}


# ---- the pinned set ------------------------------------------------------------------------------------

def pins():
  found = {}
  for line in (REPO / "constraints.txt").read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
      match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9.]*)", line)
      assert match, f"constraints.txt: {line!r} is not name==version"
      assert normalise(match.group(1)) not in found, f"constraints.txt pins {match.group(1)} twice"
      found[normalise(match.group(1))] = tuple(int(part) for part in match.group(2).split("."))
  return found


def test_the_pinned_set_pins_every_declared_distribution_inside_its_range():
  core, extra_requirements = declared()
  pinned = pins()
  for requirement in core + extra_requirements["test"]:
    name, clauses = parse_requirement(requirement)
    assert name in pinned, f"{requirement}: not pinned in constraints.txt"
    assert satisfies(pinned[name], clauses), f"constraints.txt pins {name} at {pinned[name]}, outside {requirement}"
    assert any(op == "<" for op, _ in clauses), f"{requirement}: no upper bound"


def test_the_gpu_extra_is_the_cuda_build_of_the_pinned_tensorflow():
  core, extra_requirements = declared()
  assert len(extra_requirements["gpu"]) == 1
  gpu = extra_requirements["gpu"][0]
  assert re.match(r"^tensorflow\[and-cuda\]", gpu), gpu
  core_tensorflow = next(r for r in core if parse_requirement(r)[0] == "tensorflow")
  assert parse_requirement(gpu) == parse_requirement(core_tensorflow)  # the same range as the core's
  assert satisfies(pins()["tensorflow"], parse_requirement(gpu)[1])
  # Gigabytes of CUDA libraries a machine without a GPU cannot use: neither [all] nor [test] brings them.
  assert gpu not in extra_requirements["all"] and gpu not in extra_requirements["test"]


def test_the_cuda_libraries_of_the_gpu_extra_are_pinned_inside_tensorflows_ranges():
  """What tensorflow[and-cuda] installs (the installed TensorFlow's own metadata: the pinned one) is pinned,
  each inside TensorFlow's range for it, and nothing else of CUDA is."""
  assert importlib.metadata.version("tensorflow") == ".".join(map(str, pins()["tensorflow"]))
  wanted = {}
  for requirement in importlib.metadata.requires("tensorflow"):
    text, _, marker = requirement.partition(";")
    if re.search(r"""extra\s*==\s*["']and-cuda["']""", marker):
      name, clauses = parse_requirement(text)
      wanted[name] = clauses
  assert len(wanted) >= 10 and "nvidia-cudnn-cu12" in wanted
  pinned = pins()
  assert {name for name in pinned if name.startswith("nvidia-")} == set(wanted)
  for name, clauses in wanted.items():
    assert satisfies(pinned[name], clauses), f"constraints.txt pins {name} at {pinned[name]}, outside {clauses}"


def test_the_range_checker_can_fail():
  assert parse_requirement("ray[default]>=2.60.0,<3") == ("ray", [(">=", (2, 60, 0)), ("<", (3,))])
  assert satisfies((2, 21, 0), [(">=", (2, 21)), ("<", (2, 22))])
  assert not satisfies((2, 22, 0), [(">=", (2, 21)), ("<", (2, 22))])
  assert not satisfies((2, 20, 9), [(">=", (2, 21))])


def test_the_readme_and_ci_install_with_the_pinned_set():
  blocks = re.findall(r"^```\n(.*?)^```", (REPO / "README.md").read_text(), re.S | re.M)
  train, test = blocks[0].strip(), blocks[1].strip()
  assert train.startswith("pip install -e . -c constraints.txt && ") and train.endswith("maddpg-train")
  assert test == 'pip install -e ".[test]" -c constraints.txt && python -m pytest -q tests'


# ---- the one line of a missing extra --------------------------------------------------------------------

def test_require_names_the_extra_of_a_missing_module(monkeypatch):
  monkeypatch.setitem(sys.modules, "ray", None)
  with pytest.raises(extras.MissingExtra) as caught:
    extras.require("grid")
  assert str(caught.value) == 'Ray is not installed; pip install "maddpg-tf[grid]"'
  assert (caught.value.name, caught.value.extra) == ("ray", "grid")
  extras.require("mpe")  # installed here ([test] brings every extra): nothing raised
  with pytest.raises(ValueError, match="unknown extra 'gird'"):
    extras.require("gird")


def test_an_import_error_of_an_extras_module_becomes_its_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, "mpe2", None)
  with pytest.raises(ModuleNotFoundError) as caught:
    from mpe2 import simple_spread_v3  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  assert str(extras.missing_extra(caught.value)) == 'mpe2 is not installed; pip install "maddpg-tf[mpe]"'
  assert extras.missing_extra(ModuleNotFoundError("no module", name="some_other_package")) is None
  assert extras.missing_extra(ImportError("cannot import name 'x' from 'ray'", name="ray")) is None


def _program(module, args, cwd):
  """Runs `python -m maddpg_tf.cli.<module> args` with every extra missing (the program starts all the same,
  and names the first extra it needs)."""
  code = (f"import runpy, sys; sys.modules.update(dict.fromkeys({list(extras.OPTIONAL)!r})); "
          f"sys.argv = ['{module}'] + {list(args)!r}; runpy.run_module('maddpg_tf.cli.{module}', run_name='__main__')")
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
  return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=300)


def _assert_one_line(done, line):
  assert (done.returncode, done.stderr.strip().splitlines(), done.stdout) == (2, [line], ""), done.stderr


def test_reproduce_without_ray_says_which_extra_and_writes_nothing(tmp_path):
  done = _program("reproduce", ["--what=table1", "--budget=smoke", f"--results={tmp_path / 'results'}"],
                  tmp_path)
  _assert_one_line(done, 'maddpg-reproduce: error: Ray is not installed; pip install "maddpg-tf[grid]"')
  assert sorted(os.listdir(tmp_path)) == []


def test_reproduce_without_matplotlib_says_which_extra_but_table2_needs_none(tmp_path):
  done = _program("reproduce", ["--what=table1", "--norun", f"--results={tmp_path}"], tmp_path)
  _assert_one_line(done, 'maddpg-reproduce: error: matplotlib is not installed; pip install "maddpg-tf[plots]"')


def test_train_on_an_mpe_task_without_mpe2_says_which_extra_and_writes_nothing(tmp_path):
  done = _program("train", [f"--config={REPO / 'configs' / 'mpe.py'}:task=simple_spread,estimator=gst",
                            f"--workdir={tmp_path / 'run'}"], tmp_path)
  _assert_one_line(done, 'maddpg-train: error: mpe2 is not installed; pip install "maddpg-tf[mpe]"')
  assert sorted(os.listdir(tmp_path)) == []


def test_search_without_keras_tuner_says_which_extra(tmp_path):
  done = _program("search", [f"--config={REPO / 'configs' / 'lbf.py'}:task=lbf-8x8-2p-2f-coop,estimator=grmck",
                             f"--dir={tmp_path / 'search'}"], tmp_path)
  _assert_one_line(done, 'maddpg-search: error: keras-tuner is not installed; pip install "maddpg-tf[search]"')
  assert sorted(os.listdir(tmp_path)) == []


def test_estimator_lab_without_matplotlib_says_which_extra(monkeypatch, capsys, tmp_path):
  # In this process: the lab's estimators load TensorFlow, whose C++ log lines a subprocess would show.
  from maddpg_tf.cli import lab  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  assert lab.run([f"--out={tmp_path / 'lab'}", "--samples=10", "--replicates=2"]) == 2
  assert capsys.readouterr().err == 'maddpg-estimator-lab: error: matplotlib is not installed; pip install "maddpg-tf[plots]"\n'
  assert sorted(os.listdir(tmp_path)) == []


def test_an_mp4_without_imageio_ffmpeg_is_refused_with_its_path_a_gif_is_not(monkeypatch, tmp_path):
  from maddpg_tf.media import video  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
  with pytest.raises(extras.MissingExtra, match=r'imageio-ffmpeg is not installed; pip install "maddpg-tf\[video\]"'):
    video.check_video_path(tmp_path / "episode.mp4")
  assert video.check_video_path(tmp_path / "episode.gif") == ".gif"

"""The package's layering, as a contract CI checks: every module of `estimators/` and `maddpg_tf/` is parsed
(nothing is imported) and its imports are held to three rules.

1. Layers import only downward. `LAYERS` (below, the one place the order is written) lists them lowest
   first; a module may import its own folder and the layers before its own, never a later one nor a
   sibling of the same rank. The library imports nothing of `tools/` or `configs/`.
2. No import cycle between modules, counting function-local imports too: a local import cannot hide one.
3. A function-local import must defer a heavy or optional dependency named in `DEFERRED` (with its
   reason): either that package itself, or a module of ours that imports one at its top which the
   importing module does not already import. Anything else belongs at the top of the module.

Every `maddpg_tf` package's `__init__` is a docstring that says what the folder is for and what it may
import ("May import: ..."), and imports nothing. The checker runs on generated packages too, to show that
each rule can fail.
"""

import ast
import collections
import os
import pathlib
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("estimators", "maddpg_tf")

# Lowest first. Each entry is one rank: a tuple of sibling folders (or modules) that may import every
# earlier rank but not each other. `media` sits below `run` because a training run draws episodes into
# TensorBoard (`log.video_every_evals`); `analysis.statistics` (pure NumPy/SciPy) below `run` because a saved
# policy's evaluation reports the tables' interval, while the rest of `analysis` reads runs' files.
LAYERS = (
    ("estimators",),          # discrete gradient estimators: knows nothing of MADDPG
    ("maddpg_tf.files", "maddpg_tf.extras"),  # result files written whole; optional dependencies by extra
    ("maddpg_tf.agent",),     # networks, learner, optimisers, actor, replay, hyperparameters, diagnostics
    ("maddpg_tf.envs",),      # tasks, vector protocol, reference / fast / PettingZoo backends, workers
    ("maddpg_tf.config",),    # the run config's schema and defaults
    ("maddpg_tf.media",),     # frames, videos, SavedModel export
    ("maddpg_tf.analysis.statistics",),  # Student-t intervals and Welch tests (Table 1's statistics)
    ("maddpg_tf.run",),       # one training run and its parts; a finished run's saved policies
    ("maddpg_tf.analysis",),  # statistics, tables, figures, aggregates (no TensorFlow)
    ("maddpg_tf.lab",),       # the estimator lab and timing (Table 2)
    ("maddpg_tf.grid", "maddpg_tf.search"),  # Ray grids (maddpg-reproduce); keras-tuner search
    ("maddpg_tf.cli",),       # the programs: thin absl mains
)
ROOT_MODULES = ("maddpg_tf",)  # the package's own __init__: a docstring, below every layer
FORBIDDEN = ("tools", "configs")  # scripts and presets over the library, never under it

# What a function-local import may defer, and why (import times measured on 2 cores).
DEFERRED = {
    "tensorflow": "about 10 s: programs check their input, and answer --help, before it loads",
    "tensorflow_probability": "imports TensorFlow",
    "keras": "imports TensorFlow",
    "keras_tuner": "imports TensorFlow; only maddpg-search's tuner needs it",
    "tensorboard.plugins": "its summary plugins import TensorFlow",
    "ray": "a Ray grid only (about 1 s, and threads at import)",
    "matplotlib": "figures only (about 1 s)",
    "imageio": "writing a video only (with its ffmpeg plugin)",
    "numba": "the fast backends' compiler (about 1 s); the reference backend does without",
    "scipy": "confidence intervals only (scipy.stats takes about 1.5 s)",
    "mpe2": "optional: imported when a multi-particle env is built",
    "wandb": "optional (the wandb extra): imported when log.to names it",
    "mlflow": "optional (the mlflow extra): imported when log.to names it",
}


# ---- the checker ------------------------------------------------------------------------------------------

Import = collections.namedtuple("Import", "source target line local")


def find_modules(root, packages):
  """{dotted module name: path} of every .py file under `root/<package>` (packages as their __init__)."""
  modules = {}
  for package in packages:
    for directory, _, files in os.walk(os.path.join(root, package)):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(directory, name)
          dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
          modules[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
  return modules


def _is_package(modules, name):
  return modules.get(name, "").endswith("__init__.py")


def _resolve_relative(module, modules, level, name):
  parts = module.split(".") if _is_package(modules, module) else module.split(".")[:-1]
  base = parts[:len(parts) - (level - 1)]
  return ".".join(base + ([name] if name else []))


def _outer_import_nodes(tree):
  """(node, local) for every import statement; local: inside a function (at any depth)."""
  found = []

  def visit(node, local):
    for child in ast.iter_child_nodes(node):
      if isinstance(child, (ast.Import, ast.ImportFrom)):
        found.append((child, local))
      visit(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

  visit(tree, False)
  return found


def _dynamic_imports(tree):
  """Literal module names given to importlib.import_module or __import__."""
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
        and isinstance(node.args[0].value, str):
      func = node.func
      called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
      if called in ("import_module", "__import__"):
        names.append((node.args[0].value, node.lineno))
  return names


def read_imports(modules):
  """(internal, external, dynamic): Import records between our modules; Import records whose target is
  an outside dotted name; (source, name, line) of literal dynamic imports."""
  internal, external, dynamic = [], [], []
  for module, path in sorted(modules.items()):
    with open(path) as handle:
      tree = ast.parse(handle.read(), path)
    for node, local in _outer_import_nodes(tree):
      if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
      else:
        base = _resolve_relative(module, modules, node.level, node.module) if node.level else node.module
        # `from package import name`: the module package.name where there is one, else the package.
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
      for target in targets:
        owner = target
        while owner and owner not in modules:
          owner = owner.rpartition(".")[0]
        if owner:
          if owner != module:
            internal.append(Import(module, owner, node.lineno, local))
        else:
          external.append(Import(module, target, node.lineno, local))
    dynamic.extend((module, name, line) for name, line in _dynamic_imports(tree))
  return internal, external, dynamic


def rank_of(module, layers, root_modules=()):
  """(rank, folder) of `module` in `layers`; rank -1 for the root modules; None if no layer holds it."""
  if module in root_modules:
    return -1, module
  for rank, siblings in enumerate(layers):
    for folder in siblings:
      if module == folder or module.startswith(folder + "."):
        return rank, folder
  return None


def upward_imports(internal, layers, root_modules=()):
  """Imports of a later rank, or of a sibling of the same rank, as readable lines."""
  problems = []
  for edge in internal:
    source, target = rank_of(edge.source, layers, root_modules), rank_of(edge.target, layers, root_modules)
    if source is None or target is None:
      continue  # reported by `unplaced`
    if target[0] > source[0] or (target[0] == source[0] and target[1] != source[1]):
      problems.append(f"{edge.source}:{edge.line} imports {edge.target} ({target[1]} is "
                      f"{'above' if target[0] > source[0] else 'a sibling of'} {source[1]})")
  return problems


def unplaced(modules, layers, root_modules=()):
  return sorted(m for m in modules if rank_of(m, layers, root_modules) is None)


def cycles(internal):
  """Import cycles (top-level and local imports alike) as lists of modules, each from Tarjan's strongly
  connected components of more than one module."""
  graph = collections.defaultdict(set)
  for edge in internal:
    graph[edge.source].add(edge.target)
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def connect(node):  # iterative Tarjan: deep import chains must not hit the recursion limit
    work = [(node, iter(sorted(graph[node])))]
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    while work:
      current, children = work[-1]
      child = next(children, None)
      if child is not None:
        if child not in index:
          index[child] = low[child] = len(index)
          stack.append(child)
          on_stack.add(child)
          work.append((child, iter(sorted(graph[child]))))
        elif child in on_stack:
          low[current] = min(low[current], index[child])
        continue
      work.pop()
      if work:
        low[work[-1][0]] = min(low[work[-1][0]], low[current])
      if low[current] == index[current]:
        component = []
        while True:
          member = stack.pop()
          on_stack.discard(member)
          component.append(member)
          if member == current:
            break
        if len(component) > 1:
          found.append(sorted(component))

  for node in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
    if node not in index:
      connect(node)
  return sorted(found)


def _deferred_name(name, deferred):
  for package in deferred:
    if name == package or name.startswith(package + "."):
      return package
  return None


def top_level_heavy(internal, external, deferred):
  """{module: the `deferred` packages it imports at its top, itself or through our modules it imports at
  their tops}."""
  direct = collections.defaultdict(set)
  for edge in external:
    package = _deferred_name(edge.target, deferred)
    if package and not edge.local:
      direct[edge.source].add(package)
  graph = collections.defaultdict(set)
  for edge in internal:
    if not edge.local:
      graph[edge.source].add(edge.target)
  memo = {}

  def heavy(module, visiting=()):
    if module in memo:
      return memo[module]
    result = set(direct[module])
    for target in graph[module]:
      if target not in visiting:
        result |= heavy(target, visiting + (module,))
    memo[module] = result
    return result

  modules = set(direct) | set(graph) | {t for targets in graph.values() for t in targets}
  return {module: heavy(module) for module in modules}


def needless_local_imports(internal, external, deferred):
  """Function-local imports that defer nothing named in `deferred`."""
  heavy = top_level_heavy(internal, external, deferred)
  problems = []
  for edge in external:
    if not edge.local:
      continue
    package = _deferred_name(edge.target, deferred)
    if not package:
      problems.append(f"{edge.source}:{edge.line} imports {edge.target} inside a function: not a deferred "
                      f"dependency (DEFERRED); import it at the top")
    elif package in heavy.get(edge.source, set()):
      problems.append(f"{edge.source}:{edge.line} imports {edge.target} inside a function, but {edge.source} "
                      f"imports {package} at its top already; import it at the top")
  for edge in internal:
    if edge.local and not heavy.get(edge.target, set()) - heavy.get(edge.source, set()):
      problems.append(f"{edge.source}:{edge.line} imports {edge.target} inside a function, deferring nothing "
                      f"in DEFERRED that {edge.source} does not already import; import it at the top")
  return problems


def forbidden_imports(internal, external, dynamic, forbidden, packages):
  problems = [f"{e.source}:{e.line} imports {e.target}" for e in external
              if e.target.split(".")[0] in forbidden]
  problems += [f"{source}:{line} imports {name!r} dynamically" for source, name, line in dynamic
               if name.split(".")[0] in forbidden + tuple(packages)]
  return problems


def check(root, packages, layers, root_modules=(), deferred=None, forbidden=()):
  """Every problem of the tree under `root`, by rule: {rule: [readable lines]}."""
  modules = find_modules(root, packages)
  internal, external, dynamic = read_imports(modules)
  return {
      "unplaced modules": unplaced(modules, layers, root_modules),
      "imports up a layer": upward_imports(internal, layers, root_modules),
      "import cycles": [" -> ".join(c) for c in cycles(internal)],
      "needless local imports": needless_local_imports(internal, external, deferred or {}),
      "forbidden imports": forbidden_imports(internal, external, dynamic, forbidden, packages),
  }


# ---- the contract on this repository ------------------------------------------------------------------

@pytest.fixture(scope="module")
def problems():
  return check(REPO, PACKAGES, LAYERS, ROOT_MODULES, DEFERRED, FORBIDDEN)


@pytest.mark.parametrize("rule", ["unplaced modules", "imports up a layer", "import cycles",
                                  "needless local imports", "forbidden imports"])
def test_contract(problems, rule):
  assert problems[rule] == [], f"{rule}:\n  " + "\n  ".join(problems[rule])


def test_estimators_know_nothing_of_maddpg():
  modules = find_modules(REPO, PACKAGES)
  internal, external, dynamic = read_imports(modules)
  assert [e for e in internal if e.source.startswith("estimators") and e.target.startswith("maddpg_tf")] == []
  assert [n for s, n, _ in dynamic if s.startswith("estimators") and n.startswith("maddpg_tf")] == []


def test_every_package_says_what_it_is_for_and_may_import():
  modules = find_modules(REPO, ("maddpg_tf",))
  internal, external, _ = read_imports(modules)
  for package, path in modules.items():
    if not path.endswith("__init__.py"):
      continue
    with open(path) as handle:
      tree = ast.parse(handle.read())
    docstring = ast.get_docstring(tree) or ""
    assert docstring, f"{path} has no docstring"
    if package != "maddpg_tf":
      assert "May import:" in docstring, f"{path}: its docstring does not say what the folder may import"
    assert [e for e in internal + external if e.source == package] == [], f"{path} imports something"


def test_every_layer_is_a_folder_or_module_that_exists():
  modules = find_modules(REPO, PACKAGES)
  for siblings in LAYERS:
    for folder in siblings:
      assert folder in modules, f"LAYERS names {folder}, which is no module or package"


# ---- the checker can fail -----------------------------------------------------------------------------

def _write(root, files):
  for name, text in files.items():
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


SYNTHETIC_LAYERS = (("pkg.low",), ("pkg.mid_a", "pkg.mid_b"), ("pkg.high",))


def test_checker_passes_a_clean_package(tmp_path):
  _write(tmp_path, {
      "pkg/__init__.py": '"""May import: nothing."""\n',
      "pkg/low.py": "import os\n",
      "pkg/mid_a.py": "from pkg import low\n\ndef f():\n  import tensorflow\n",
      "pkg/high.py": "from pkg import mid_a, mid_b\n",
      "pkg/mid_b.py": "from pkg.low import os\n",
  })
  found = check(tmp_path, ("pkg",), SYNTHETIC_LAYERS, ("pkg",), {"tensorflow": "heavy"}, ("tools",))
  assert found == {rule: [] for rule in found}


def test_checker_finds_an_upward_import_a_sibling_import_and_an_unplaced_module(tmp_path):
  _write(tmp_path, {
      "pkg/__init__.py": "",
      "pkg/low.py": "from pkg import high\n",
      "pkg/mid_a.py": "import pkg.mid_b\n",
      "pkg/mid_b.py": "",
      "pkg/high.py": "",
      "pkg/stray.py": "",
  })
  found = check(tmp_path, ("pkg",), SYNTHETIC_LAYERS, ("pkg",))
  assert found["imports up a layer"] == [
      "pkg.low:1 imports pkg.high (pkg.high is above pkg.low)",
      "pkg.mid_a:1 imports pkg.mid_b (pkg.mid_b is a sibling of pkg.mid_a)"]
  assert found["unplaced modules"] == ["pkg.stray"]


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
  _write(tmp_path, {
      "pkg/__init__.py": "",
      "pkg/low.py": "",
      "pkg/mid_a.py": "from pkg import low\n",
      "pkg/mid_b.py": "",
      "pkg/high.py": "from . import one\n",
      "pkg/one.py": "def f():\n  from pkg import two\n",
      "pkg/two.py": "from pkg.high import x\n",
  })
  layers = SYNTHETIC_LAYERS[:2] + (("pkg.high", "pkg.one", "pkg.two"),)
  found = check(tmp_path, ("pkg",), layers, ("pkg",))
  assert found["import cycles"] == ["pkg.high -> pkg.one -> pkg.two"]
  assert found["imports up a layer"] == ["pkg.high:1 imports pkg.one (pkg.one is a sibling of pkg.high)",
                                         "pkg.one:2 imports pkg.two (pkg.two is a sibling of pkg.one)",
                                         "pkg.two:1 imports pkg.high (pkg.high is a sibling of pkg.two)"]


def test_checker_finds_needless_local_imports_and_forbidden_ones(tmp_path):
  _write(tmp_path, {
      "pkg/__init__.py": "",
      "pkg/low.py": "import json\nimport tensorflow\n",
      "pkg/mid_a.py": "def f():\n  import json\n  from pkg import low\n",
      "pkg/mid_b.py": "import tensorflow\n\ndef f():\n  from pkg import low\n  import tools.x\n  import tensorflow.math\n",
      "pkg/high.py": "import importlib\n\nimportlib.import_module('pkg.low')\n",
  })
  found = check(tmp_path, ("pkg",), SYNTHETIC_LAYERS, ("pkg",), {"tensorflow": "heavy"}, ("tools",))
  assert found["needless local imports"] == [
      "pkg.mid_a:2 imports json inside a function: not a deferred dependency (DEFERRED); import it at the top",
      "pkg.mid_b:5 imports tools.x inside a function: not a deferred dependency (DEFERRED); import it at the top",
      "pkg.mid_b:6 imports tensorflow.math inside a function, but pkg.mid_b imports tensorflow at its top already; "
      "import it at the top",
      "pkg.mid_b:4 imports pkg.low inside a function, deferring nothing in DEFERRED that pkg.mid_b does not "
      "already import; import it at the top"]
  assert found["forbidden imports"] == ["pkg.mid_b:5 imports tools.x", "pkg.high:3 imports 'pkg.low' dynamically"]

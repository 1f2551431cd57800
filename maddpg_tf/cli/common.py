"""What the command-line programs (and the tools) share: usage errors as one line, absl flags with config
files (a misspelled key named with the keys there are), argparse with one-line errors, and `run_main`, which
turns SIGINT and SIGTERM outside a program's own handlers into one line and status 128 + the signal, and a
missing optional dependency into one line naming its extra (`maddpg_tf.extras`) and status 2. The
process-wide pieces (one-line messages, signals, the quiet TensorFlow import) are `maddpg_tf.run.process`.
Imports neither TensorFlow nor anything that does."""

import argparse
import ast
import os
import re
import signal
import sys

from absl import app, flags
from ml_collections import config_flags

from maddpg_tf import config as config_lib
from maddpg_tf import extras
from maddpg_tf.envs import mpe, tasks
from maddpg_tf.run.process import Terminated, load_module, one_line, raise_interrupt


def catalogue():
  """What `maddpg-train --list` prints and the programs' --help show: tasks, estimators, budgets, presets,
  and how to set any config key (lines of text, from the tables the config is built from)."""
  by_family = {}
  for name, task in tasks.TASKS.items():
    by_family.setdefault(task.family, []).append(name)
  paper = list(config_lib.PAPER_ESTIMATORS["lbf"])
  extra = [name for name in config_lib.EXTRA_ESTIMATORS if name not in paper]
  smoke, short = config_lib.BUDGETS["smoke"], config_lib.BUDGETS["short"]
  rware_short = config_lib.FAMILY_BUDGETS[("rware", "short")]["total_steps"]
  return [
      "tasks (--config=<preset>:task=<name>):",
      f"  LBF, configs/lbf.py: {', '.join(by_family['lbf'])}",
      f"  RWARE, configs/rware.py: {', '.join(by_family['rware'])}",
      f"  MPE, configs/mpe.py: {', '.join(mpe.MPE_TASKS)}",
      "  or any gymnasium id of lbforaging or rware (e.g. Foraging-5x5-2p-1f-v3), or your PettingZoo env:",
      "  --config=configs/pettingzoo.py:env=module:factory",
      "estimators (estimator=<name>):",
      f"  the paper's, at its tuned settings per environment: {', '.join(paper)}",
      f"  beyond the paper: {', '.join(extra)}",
      "  or your own by import path: estimator=module.path:ClassName",
      "budgets (after the colon, e.g. configs/lbf.py:task=lbf-10x10-3p-3f,smoke):",
      f"  smoke: {smoke['total_steps']:,} env steps (tests; about half a minute, mostly TensorFlow's start and "
      "compile)",
      f"  short: {short['total_steps']:,} env steps (RWARE {rware_short:,}; the default job)",
      "  none: the paper's steps for the task (5M to 7.5M)",
      "presets (--config=<file>[:arguments]):",
      "  maddpg_tf/config.py (the default, from any directory; the schema and every default), configs/lbf.py,",
      "  configs/rware.py, configs/mpe.py, configs/pettingzoo.py (configs/ is in the repository)",
      "config keys: any key as --config.<key>=<value>, e.g. --config.seed=1 --config.total_steps=500000",
      "  --config.estimator.temperature=0.5 --config.loop.episode_limit=50 --config.fidelity=text;",
      "  every key with its value: maddpg-train [--config=...] --print_config",
  ]


def error(program, message, status=2):
  """Prints `<program>: error: <message as one line>` on stderr; returns `status`."""
  print(f"{program}: error: {one_line(message)}", file=sys.stderr, flush=True)
  return status


# ---- absl flags with ml_collections config files -------------------------------------------------------

def _load_config_file(spec):
  """The ConfigDict of 'path/to/file.py[:arg]' (as ml_collections' config flags load it)."""
  path, _, arg = spec.partition(":")
  module = load_module(path)
  return module.get_config(arg) if arg else module.get_config()


def _missing_key(argv, config_files):
  """For the first `--<flag>.<dotted>` override of `argv` whose key its config lacks: "no such config key
  ...; allowed ..." naming the keys there are at that level. None if none can be found."""
  for arg in argv[1:]:
    match = re.match(r"^--?(\w+)\.([\w.]+)(=|$)", arg)
    if not match or match.group(1) not in config_files:
      continue
    name, dotted = match.group(1), match.group(2)
    given = [a.split("=", 1)[1] for a in argv[1:] if re.match(rf"^--?{name}=", a)]
    spec = given[-1] if given else config_files[name]
    try:
      node = _load_config_file(spec) if spec else None
    except Exception:  # pylint: disable=broad-except  (the file's own error is reported elsewhere)
      return None
    if node is None:
      return None
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
      keys = list(node.keys()) if hasattr(node, "keys") else []
      if part not in keys:
        where = f" under {name}.{'.'.join(parts[:depth])}" if depth else f" in --{name}"
        return (f"no such config key {part!r} in --{name}.{dotted}; allowed{where}: "
                f"{', '.join(sorted(keys)) or 'none (it is a value, not a group)'}")
      node = node[part]
  return None


CONFIG_FILE_HINT = "a config file is Python defining get_config(), e.g. configs/lbf.py:smoke or configs/search.py"


def _broken_config_file(argv, config_files):
  """"--<flag>=<spec>: cannot load it (...); ..." for the first config file given in `argv` that does not
  load; None if they all do."""
  for arg in argv[1:]:
    match = re.match(r"^--?(\w+)=(.*)$", arg)
    if not match or match.group(1) not in config_files:
      continue
    try:
      _load_config_file(match.group(2))
    except Exception as failure:  # pylint: disable=broad-except  (whatever the file raises)
      return f"--{match.group(1)}={match.group(2)}: cannot load it ({type(failure).__name__}: {failure}); " \
             f"{CONFIG_FILE_HINT}"
  return None


def config_value(handle, name):
  """The ConfigDict of config flag `handle` (None if unset); a ValueError naming the file if it does not
  load (ml_collections loads some files lazily: a missing file or a directory fails here, on first use)."""
  try:
    value = handle.value
    if value is not None:
      value.keys()
    return value
  except Exception as failure:  # pylint: disable=broad-except
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    detail = (lines[-1] if lines else repr(failure)).replace(
        "Configuration is not available because of an earlier failure to load: ", "")
    spec = config_flags.get_config_filename(flags.FLAGS[name])
    raise ValueError(f"--{name}={spec}: cannot load it ({detail}); {CONFIG_FILE_HINT}") from None


def parse_flags(program, argv, config_files, define_error=None):
  """absl's parsing, with any flag or config-file error as one line and exit status 2.

  `config_files`: {config flag name: its default file spec} (to name the keys an unknown override could
  have been). `define_error`: an error ml_collections raised while defining a config flag (it applies
  `--<flag>.*` overrides to the default file then), reported as if parsing had raised it.
  """
  try:
    if define_error is not None:
      raise ValueError("config override") from define_error
    return flags.FLAGS(argv)
  except Exception as failure:  # flags.Error, and whatever a config file or override raises
    cause = failure.__cause__ or failure.__context__
    if isinstance(cause, (AttributeError, KeyError)):
      detail = _missing_key(argv, config_files)
      if detail is None:
        key_message = str(cause.args[0]) if cause.args else str(cause)
        if len(key_message) > 1 and key_message[0] in "'\"" and key_message[-1] == key_message[0]:
          try:  # ml_collections wraps some messages in a second repr
            key_message = str(ast.literal_eval(key_message))
          except (ValueError, SyntaxError):
            pass
        detail = "no such config key " + key_message.replace("\n", "; ")
    elif not isinstance(failure, flags.Error):
      detail = _broken_config_file(argv, config_files) or str(failure)
    else:
      detail = str(failure)
    sys.exit(error(program, detail))


# ---- running a program --------------------------------------------------------------------------------

def run_main(program, main, flags_parser):
  """absl's `app.run(main)`, where SIGINT or SIGTERM arriving outside the handlers a program installs for
  its own work (a training run checkpoints first) ends it with one line and status 128 + the signal,
  not a traceback: e.g. Ctrl-C while TensorFlow loads, before anything is written."""
  signal.signal(signal.SIGINT, raise_interrupt)
  signal.signal(signal.SIGTERM, raise_interrupt)
  # absl's --help starts with the __main__ module's docstring: a console script's stub has none, so the
  # program module's own is shown (its usage lines, what it does).
  main_module = sys.modules.get("__main__")
  if main_module is not None and not main_module.__doc__:
    main_module.__doc__ = sys.modules[main.__module__].__doc__
  # absl's --help lists the flags of the module named by sys.argv[0]; a console script's is the script, so
  # the program module's flags are declared key flags of it (else --help shows only "Try --helpfull").
  for flag in flags.FLAGS.flags_by_module_dict().get(main.__module__, []):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  def _main(argv):
    try:
      status = main(argv)
    except ImportError as failure:  # an extra the program needs (checked up front, or met while importing)
      missing = extras.missing_extra(failure)
      if missing is None:
        raise
      sys.exit(error(program, missing))
    except KeyboardInterrupt as interrupt:
      signum = signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT
      print(f"{program}: interrupted ({signal.Signals(signum).name}) while nothing was being written; run the "
            f"same command to start or resume", file=sys.stderr, flush=True)
      sys.stdout.flush()
      # Not sys.exit: after a KeyboardInterrupt has passed through some import machinery, CPython can end
      # the process with SIGINT at exit whatever status we give (seen: -2 instead of 130 in about one run
      # in three when Ctrl-C landed during imports; CPython's "unhandled KeyboardInterrupt" exit). Nothing
      # has been written yet (see above), so there is nothing to clean up.
      os._exit(128 + signum)
    sys.exit(status)
  app.run(_main, flags_parser=flags_parser)


# ---- argparse (the tools) -----------------------------------------------------------------------------

class ArgumentParser(argparse.ArgumentParser):
  """argparse whose errors are one line, `<prog>: error: <message>` (no usage block), exit status 2."""

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")



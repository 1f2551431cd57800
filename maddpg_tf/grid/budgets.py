"""The grids `maddpg-reproduce` runs: the paper's tasks and estimators, and the named budgets, each
a grid of tasks x estimators x seeds with its steps and schedule.

Budgets (`--budget`):
  smoke  for tests: `lbf-8x8-2p-2f-coop`, STGS-1 and GST, seeds 0-1, the configs' `smoke` preset (2,000 env
         steps) without XLA; Figure 4 on `lbf-15x15-4p-5f`, seed 0, same preset. Each run is 13-21 CPU
         seconds (TensorFlow's start and compile in its worker, mostly); `--what=all` (6 runs, their
         absolute metrics, the outputs, Table 2's tiny benchmark) takes a few minutes (README: budgets).
  small  one 2-core machine in about two hours (SMALL_TOTAL_STEPS): `lbf-8x8-2p-2f-coop`, the five paper
         estimators, seeds 0-2, 400,000 env steps each with the `short` schedule of configs/lbf.py (4 updates
         per episode, evaluation of 40 episodes every 10,000 steps); Figure 4: `lbf-15x15-4p-5f`, STGS-1 and
         GST, seed 0, 100,000 steps of the same schedule.
  medium the paper's strongest findings on one 2-core machine (about 2-3 hours): `lbf-15x15-4p-5f` and
         `rware-tiny-4ag`, STGS-1 and GST (`--estimators` widens it), seeds 0-2, the paper's settings and its
         7.5M env steps per run; one checkpoint kept per run. Figure 4 reuses its `lbf-15x15-4p-5f` runs.
  beyond the newer estimators the paper never tried in MADDPG (README: Beyond the paper): `lbf-15x15-4p-5f`
         and `rware-tiny-4ag` at the paper's settings, STGS-1 and GST as the paper's references, then ReinMax,
         ReinMax-Rao, ZGR, RLOO and the exact `expected` oracle, seeds 0-2, cut where the paper's two
         estimators already separate (BEYOND_STEPS). Figure 4 reuses its `lbf-15x15-4p-5f` runs.
  paper  the paper: all nine tasks, the five estimators at the paper's settings per environment
         (maddpg_tf/FIDELITY.md: Estimator settings), seeds 0-4, Table 1's budgets (5M / 6M / 7.5M env steps), evaluation of 100 episodes
         every 50,000 steps. Figure 4 reuses the `lbf-15x15-4p-5f` STGS-1 and GST runs.
`--fidelity` (code or text; see README) is recorded in every run and stated in every output.
"""

import dataclasses
import re

from maddpg_tf import config as common
from maddpg_tf.envs import mpe as mpe_tasks

BUDGET_NAMES = ("smoke", "small", "medium", "beyond", "paper")
TASKS = tuple(common.TOTAL_STEPS)                       # the paper's nine tasks, in Table 1's order
# Every task a grid may name: the paper's and the multi-particle ones (not in any budget by default).
GRID_TASKS = TASKS + tuple(mpe_tasks.MPE_TASKS)
PAPER_ESTIMATORS = tuple(common.PAPER_ESTIMATORS["lbf"])  # stgs-1, stgs-t, tags, grmck, gst
ESTIMATORS = PAPER_ESTIMATORS + tuple(common.EXTRA_ESTIMATORS)
# A user's estimator, as `estimators.resolve` takes it (the driver does not import that package: TensorFlow).
ESTIMATOR_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
ESTIMATOR_PATH_FORM = "module.path:ClassName (your subclass of estimators.DiscreteGradientEstimator)"
FIGURE4_TASK = "lbf-15x15-4p-5f"
FIGURE4_ESTIMATORS = ("stgs-1", "gst")

# The small budget's steps per run, sized by measurement on this kind of machine (2 cores; two runs at once,
# one TensorFlow thread each, LBF 8x8 with the `short` schedule, the fast environments): a 400,000-step run
# takes 178-292 CPU seconds (mean 218), so the whole `--what=all` (15 runs, Figure 4's two, the absolute
# metrics, the benchmark) takes about half an hour on an idle 2-core machine.
SMALL_TOTAL_STEPS = 400_000
SMALL_FIGURE4_STEPS = 100_000
# The medium budget: the two tasks where the paper found GST ahead of STGS-1, at the paper's own settings.
# Measured here (2 cores, two runs at once, fast envs; 400,000-step runs of GST): 5,000-5,900 env steps/s
# on lbf-15x15-4p-5f and 7,200-8,000 on rware-tiny-4ag, evaluations included, so the paper's full 7.5M
# steps per run take about 23 and 17 minutes and the 12 runs about two hours: no cut is needed.
MEDIUM_TASKS = ("lbf-15x15-4p-5f", "rware-tiny-4ag")
# A 7.5M-step run's 2M-transition buffer is 0.9 GB (LBF) to 3.7 GB (RWARE) per checkpoint: one kept per run,
# written every 1M steps (a resume repeats at most about three minutes).
MEDIUM_CHECKPOINTS = {"checkpoint.keep": 1, "checkpoint.every_steps": 1_000_000}
# The beyond budget: where the medium grid's GST was already ahead of STGS-1 (LBF 15x15 under lbforaging
# 2.0.0's food rule by 2-3M steps, and the paper's rule learns about 1.6x faster; RWARE tiny-4ag by 3-4M),
# so that the estimators can separate, and the 42 runs fit two 3-hour sittings on 2 cores (LBF first:
# about 5,500 env steps/s for two runs at once, so 2.7 h; RWARE about 7,500, 2.7 h). ReinMax-Rao rather
# than ReinMax-CV: the lower gradient MSE of the two in the lab (README: Estimator lab).
BEYOND_TASKS = ("lbf-15x15-4p-5f", "rware-tiny-4ag")
BEYOND_ESTIMATORS = ("stgs-1", "gst", "reinmax", "reinmax-rao", "zgr", "rloo", "expected")
BEYOND_STEPS = {"lbf": 2_500_000, "rware": 3_500_000}


@dataclasses.dataclass(frozen=True)
class Budget:
  name: str
  tasks: tuple
  estimators: tuple
  seeds: tuple
  figure4_seeds: tuple
  description: str


BUDGETS = {
    "smoke": Budget("smoke", ("lbf-8x8-2p-2f-coop",), ("stgs-1", "gst"), (0, 1), (0,),
                    "smoke: the configs' smoke preset (2,000 env steps per run, XLA off); not comparable "
                    "with the paper"),
    "small": Budget("small", ("lbf-8x8-2p-2f-coop",), PAPER_ESTIMATORS, (0, 1, 2), (0,),
                    f"small: {SMALL_TOTAL_STEPS:,} env steps per run (Figure 4: {SMALL_FIGURE4_STEPS:,}) with "
                    "the `short` schedule (4 updates per episode, 40 evaluation episodes every 10,000 "
                    "steps); the paper trained 5M-7.5M steps, so returns are far below Table 1's"),
    "medium": Budget("medium", MEDIUM_TASKS, ("stgs-1", "gst"), (0, 1, 2), (0, 1, 2),
                     "medium: the paper's settings and steps (7.5M env steps per run, 1 update per LBF episode "
                     "and 10 per RWARE episode, 400 warm-up episodes, 100 evaluation episodes every 50,000 "
                     "steps) on lbf-15x15-4p-5f and rware-tiny-4ag, seeds 0-2 (the paper: 5)"),
    "beyond": Budget("beyond", BEYOND_TASKS, BEYOND_ESTIMATORS, (0, 1, 2), (0, 1, 2),
                     f"beyond: the paper's settings on lbf-15x15-4p-5f ({BEYOND_STEPS['lbf']:,} env steps per "
                     f"run) and rware-tiny-4ag ({BEYOND_STEPS['rware']:,}), STGS-1 and GST beside ReinMax, "
                     "ReinMax-Rao, ZGR, RLOO and expected, seeds 0-2; shorter than the paper's 7.5M steps"),
    "paper": Budget("paper", TASKS, PAPER_ESTIMATORS, (0, 1, 2, 3, 4), (0, 1, 2, 3, 4),
                    "paper: Table 1's budgets (5M / 6M / 7.5M env steps), the paper's estimator settings "
                    "per environment, 100 evaluation episodes every 50,000 steps, 5 seeds"),
}

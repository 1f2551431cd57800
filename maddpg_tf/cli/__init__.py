"""The programs: thin absl (or argparse) mains over library calls a notebook can make too. `train`
(maddpg-train), `evaluate` (maddpg-evaluate), `reproduce` (maddpg-reproduce), `search` (maddpg-search),
`lab` (maddpg-estimator-lab), `bench_estimators` (maddpg-bench-estimators), `compare` (maddpg-compare);
`common` holds what they share (one-line usage errors, flag parsing, signals).

May import: every layer of the library. Nothing imports it but `tools/` and the tests.
"""

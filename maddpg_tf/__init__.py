"""maddpg_tf: MADDPG with discrete gradient estimators in TensorFlow 2.

Folders by role, each importing only the ones before it: `files.py` and `extras.py`, `agent`, `envs`,
`config.py`, `media`, `run`, `analysis`, `lab`, `grid` and `search`, `cli` (README: Layout;
`tests/test_import_contract.py` checks it).
"""

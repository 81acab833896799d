"""The demo: the bundled ``ledgerkite`` library, made a git repository and run through Airflow end to end.

It runs from a doctune checkout (``make demo`` runs ``python -m demo``) and is not part of the wheel. Submodules:

- ``repo``: the demo library as a git repository, and the commits that change it (a doc tip, ledgerkite 0.4.0).
- ``pipeline``: the demo's library config and the retrain DAG run through Airflow's CLI.
- ``report``: the summary printed at the end, with one question asked live.
- ``__main__``: ``python -m demo``, the command line.
- ``install``: ``python -m demo.install``, the demo installed into a deployment (the CPU stack's demo-init).
"""

from demo.pipeline import PRESETS, airflow_env, demo_library, run_airflow, run_pipeline
from demo.repo import (
    CHECKOUT,
    DEMO_NAME,
    DEMO_SOURCE,
    commit_api_change,
    commit_next_change,
    edit_demo_docs,
    prepare_demo_repo,
    run_git,
)
from demo.report import summary

__all__ = [
    "CHECKOUT",
    "DEMO_NAME",
    "DEMO_SOURCE",
    "PRESETS",
    "airflow_env",
    "commit_api_change",
    "commit_next_change",
    "demo_library",
    "edit_demo_docs",
    "prepare_demo_repo",
    "run_airflow",
    "run_git",
    "run_pipeline",
    "summary",
]

"""The doctune console: the interactive training and inference web UI (``doctune console``, ``make console``).

- ``app``: ``create_app`` (routes, the ``Guard`` middleware) and ``main``, which serves it.
- ``settings``: ``ConsoleSettings`` (``DOCTUNE_CONSOLE_*``).
- ``auth``: users, keys and signed session cookies.
- ``context``: what every view shares (``app.state.context``), with the registry opened on first use.
- ``views``: the pages and actions, one module per page (chat, datasets, training, adapters, models, login).
- ``data``: read-only views of the pipeline's state (dataset versions and pairs, curves, the leaderboard).
- ``train_form``: the start form, built from the converter the Airflow trigger form uses.
- ``launch``: training started from the console, as a background process or through Airflow.
- ``render``: answers as HTML with highlighted code.
"""

from doctune.console.app import create_app, main
from doctune.console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_app", "main"]

"""The doctune console: the interactive training and inference web UI (``doctune console``, ``make console``)."""

from doctune.console.app import ConsoleSettings, create_app, main

__all__ = ["ConsoleSettings", "create_app", "main"]

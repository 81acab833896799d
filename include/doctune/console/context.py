"""What every view of the console shares: the settings, its users, the templates, how it starts training and the
registry; built once by ``create_app`` and kept in ``app.state.context``."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from doctune.config import Settings
from doctune.console import auth
from doctune.console.launch import Airflow, Launcher
from doctune.console.settings import ConsoleSettings
from doctune.registry import Registry


@dataclass
class ConsoleContext:
    settings: Settings
    console: ConsoleSettings
    logins: list[auth.Login]
    templates: Jinja2Templates
    launcher: Launcher
    airflow: Airflow | None  # None: runs start as `doctune train run` on this host
    gateway_headers: dict[str, str]
    failures: dict[str, list[float]] = field(default_factory=dict)  # client address -> its failed logins' times
    opened: Registry | None = None

    def registry(self) -> Registry:
        """The registry, opened (and migrated) on first use, so that a database that is down is a page's message
        rather than a console that does not start."""
        if self.opened is None:
            self.opened = Registry.open(self.settings)
        return self.opened


def context_of(request: Request) -> ConsoleContext:
    context: ConsoleContext = request.app.state.context
    return context

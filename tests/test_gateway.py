"""The gateway's own defences, in front of vLLM: they hold before anything is forwarded, and a model server that
fails mid-answer ends a stream with an error event. The upstream here is a plain socket server that behaves like a
failing vLLM (the real server is in tests/test_serve.py)."""

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from doctune.config import Settings
from doctune.serve.gateway import create_app

KEY = "client-key-1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client(settings: Settings) -> TestClient:
    keyed = settings.model_copy(
        update={
            "vllm_url": f"http://127.0.0.1:{_closed_port()}",
            "gateway_api_keys": SecretStr(f"{KEY},client-key-2"),
            "gateway_max_body_bytes": 2000,
            "gateway_requests_per_minute": 3,
        }
    )
    return TestClient(create_app(keyed), headers={"Authorization": f"Bearer {KEY}"})


def test_health_says_which_dependency_is_down(client: TestClient) -> None:
    reply = client.get("/health")
    assert reply.status_code == 503
    assert reply.json()["registry"] == "ok" and reply.json()["vllm"].startswith("unreachable")


@pytest.mark.parametrize(
    "body,status,message",
    [
        (b"[1, 2]", 400, "must be a JSON object, not list"),
        (b"not json", 400, "must be JSON"),
        (json.dumps({"model": "acme", "prompt": "x", "guided_json": {}}).encode(), 400, "'guided_json'"),
        (json.dumps({"model": "acme", "prompt": "x" * 3000}).encode(), 413, "larger than 2000 bytes"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_forwarded(
    client: TestClient, body: bytes, status: int, message: str
) -> None:
    reply = client.post("/v1/completions", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == status and message in reply.json()["error"]["message"]


def test_each_key_has_its_own_rate_limit(client: TestClient) -> None:
    statuses = [client.post("/v1/completions", content=b"[]").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    other = client.post("/v1/completions", content=b"[]", headers={"Authorization": "Bearer client-key-2"})
    assert other.status_code == 400  # the second key is not throttled by the first one's use
    assert client.post("/v1/completions", headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.fixture
def failing_upstream() -> Iterator[str]:
    """Answers every request with the start of a server-sent-event stream, then drops the connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    first = b'data: {"choices": [{"text": "def "}]}\n\n'

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + f"{len(first):x}\r\n".encode()
                    + first
                    + b"\r\n"
                )

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_stream_that_breaks_midway_ends_with_an_error_event(settings: Settings, failing_upstream: str) -> None:
    client = TestClient(create_app(settings.model_copy(update={"vllm_url": failing_upstream})))
    reply = client.post("/v1/completions", json={"model": "acme@v1", "prompt": "x", "stream": True})
    events = [line.removeprefix("data: ") for line in reply.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["text"] == "def "
    assert json.loads(events[1])["error"]["type"] == "server_error" and events[-1] == "[DONE]"

"""Load as developer tools make it: clients sending chat completions in a loop while the pipeline deploys, rolls
back or restarts something (``pipeline.bench_serving``, tests/test_serve.py)."""

from __future__ import annotations

import json
import threading
import time

import httpx


class Traffic:
    """Clients sending chat completions in a loop from threads, as developer tools do, while something else
    happens (a deploy, a rollback, a restart). Counts what a user would notice: failed requests, and streams
    that ended without their final chunk.

    ``with Traffic(...) as traffic: traffic.wait_for(n)`` blocks until ``n`` requests have finished (no sleeps),
    and leaving the block lets every client finish the request it is in.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        clients: int,
        *,
        stream: bool = True,
        max_tokens: int = 16,
        api_key: str = "local",
        prompt: str = "Write a Python function that adds two numbers.",
        retry_pause: float = 0.0,
    ):
        self.retry_pause = retry_pause
        self.base_url, self.model, self.clients, self.stream = base_url.rstrip("/"), model, clients, stream
        self.body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": stream,
        }
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.latencies: list[float] = []
        self.answered_by: list[str] = []
        self.errors: list[str] = []
        self.failed = self.truncated = 0
        self._done = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def sent(self) -> int:
        return len(self.latencies) + self.failed

    def _one(self, http: httpx.Client) -> bool:
        started = time.perf_counter()
        model, complete, error = "", False, ""
        try:
            if self.stream:
                with http.stream("POST", "/v1/chat/completions", json=self.body) as reply:
                    if reply.status_code != 200:
                        error = f"HTTP {reply.status_code}: {reply.read().decode(errors='replace')[:200]}"
                    for line in reply.iter_lines() if not error else ():
                        if line == "data: [DONE]":
                            complete = True
                        elif line.startswith("data: "):
                            model = model or json.loads(line[6:]).get("model", "")
            else:
                reply = http.post("/v1/chat/completions", json=self.body)
                if reply.status_code != 200:
                    error = f"HTTP {reply.status_code}: {reply.text[:200]}"
                else:
                    model, complete = reply.json()["model"], True
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._done:
            if error:
                self.failed += 1
                self.errors.append(error)
            else:
                self.truncated += not complete
                self.latencies.append(time.perf_counter() - started)
                self.answered_by.append(model)
            self._done.notify_all()
        return not error

    def _client_loop(self) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=120) as http:
            while not self._stop.is_set():
                if not self._one(http) and self.retry_pause:
                    self._stop.wait(self.retry_pause)  # a client backing off after an error, as IDE plugins do

    def wait_for(self, requests: int) -> None:
        with self._done:
            self._done.wait_for(lambda: self.sent >= requests)

    def __enter__(self) -> Traffic:
        self._started = time.perf_counter()
        self._threads = [threading.Thread(target=self._client_loop, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.seconds = time.perf_counter() - self._started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

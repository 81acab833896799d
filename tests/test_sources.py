import base64
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from demo import edit_demo_docs, run_git
from doctune import corpus
from doctune.config import LibraryConfig, Settings, load_library
from doctune.errors import DoctuneError
from doctune.registry import Registry
from doctune.sources import GitCredentials, redact_url, sync, sync_repository
from doctune.sources.trees import KEPT_TREES


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_clone_then_fetch_follows_the_branch(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    tree, first = sync_repository(library, settings)
    assert first == _git(demo_repo, "rev-parse", "HEAD")
    assert (tree / "ledgerkite" / "envelopes.py").is_file()
    second = edit_demo_docs(demo_repo, 1)
    assert sync_repository(library, settings) == (tree, second)
    assert sync_repository(library, settings, first)[1] == first  # an exact commit can be pinned


def test_sync_checks_out_the_commit_and_says_whether_a_version_was_built_from_it(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    result = sync(library, settings)
    assert result.changed and result.dataset_version is None
    tree = Path(result.path)
    assert tree == settings.path("workspaces", library.name, "trees") / result.commit
    assert _git(tree, "rev-parse", "HEAD") == result.commit == _git(demo_repo, "rev-parse", "HEAD")
    assert (tree / "ledgerkite" / "envelopes.py").is_file()
    # The build fingerprints the doc surface, so the snapshot (commit and fingerprint) is its to record.
    info = corpus.build(library, settings, result)
    snapshot = Registry.open(settings).latest_snapshot(library.name)
    assert snapshot is not None and snapshot.commit == result.commit
    manifest = json.loads((Path(info.path) / "manifest.json").read_text())
    assert snapshot.surface_hash == manifest["surface_hash"]
    again = sync(library, settings)
    assert (again.changed, again.dataset_version, again.path) == (False, info.version, result.path)
    edit_demo_docs(demo_repo, 1)
    assert sync(library, settings).changed


def test_trees_of_older_syncs_are_deleted(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    oldest = sync(library, settings)
    newer = []
    for n in range(1, KEPT_TREES + 1):
        edit_demo_docs(demo_repo, n)
        newer.append(sync(library, settings))
    kept = sorted(p.name for p in settings.path("workspaces", library.name, "trees").iterdir())
    assert kept == sorted(r.commit for r in newer) and not Path(oldest.path).exists()
    repo = settings.path("workspaces", library.name) / "repo"
    assert oldest.commit not in _git(repo, "worktree", "list")  # git forgot it too
    with pytest.raises(DoctuneError, match=r"tree of ledgerkite at \w{12} is gone .*: run the sync again"):
        corpus.build(library, settings, oldest)


def test_hooks_in_the_repository_never_run(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    marker = settings.home / "hook-ran"
    hook = demo_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    tree, _ = sync_repository(library, settings)
    (tree / ".git" / "hooks" / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (tree / ".git" / "hooks" / "post-checkout").chmod(0o755)
    edit_demo_docs(demo_repo, 2)
    sync(library, settings)  # a fetch, a checkout, and a worktree of the commit
    assert not marker.exists()


def test_missing_repository(settings: Settings, tmp_path: Path) -> None:
    library = LibraryConfig(name="ghost", repo_url=(tmp_path / "nope").as_uri())
    with pytest.raises(DoctuneError, match=r"repository .*nope does not exist or is unreachable.*repo_url"):
        sync_repository(library, settings)
    assert not (settings.home / "workspaces" / "ghost" / "repo").exists()


def test_missing_branch(settings: Settings, demo_repo: Path) -> None:
    library = LibraryConfig(name="ledgerkite", repo_url=demo_repo.as_uri(), branch="release")
    with pytest.raises(DoctuneError, match=r"branch 'release' does not exist in .*set 'branch'"):
        sync_repository(library, settings)


def test_empty_repository(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q", "-b", "main")
    library = LibraryConfig(name="empty", repo_url=empty.as_uri())
    with pytest.raises(DoctuneError, match="(?i)empty|does not exist in"):
        sync_repository(library, settings)
    assert Registry.open(settings).latest_snapshot("empty") is None


def test_credentials_in_the_url_are_refused_without_showing_them(tmp_path: Path) -> None:
    config = tmp_path / "private.yaml"
    config.write_text("name: private\nrepo_url: http://deploy:s3cr3t-token@127.0.0.1:9/acme.git\n")
    with pytest.raises(DoctuneError, match="repo_url carries credentials.*git_conn_id") as info:
        load_library(config)
    assert "s3cr3t-token" not in str(info.value)
    # What git itself prints about a URL is redacted before it reaches an error or a log.
    assert (
        redact_url("fatal: unable to access 'https://user:pw@host/x'") == "fatal: unable to access 'https://***@host/x'"
    )


def test_a_tree_over_the_size_limits_is_refused_before_checkout(
    settings: Settings, library: LibraryConfig, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCTUNE_MAX_REPO_FILES", "3")
    with pytest.raises(DoctuneError, match=r"has \d+ files at origin/main, more than DOCTUNE_MAX_REPO_FILES=3"):
        sync_repository(library, Settings())
    assert not (settings.path("workspaces", library.name) / "repo").exists()  # no half-made checkout is kept
    monkeypatch.delenv("DOCTUNE_MAX_REPO_FILES")
    monkeypatch.setenv("DOCTUNE_MAX_REPO_MB", "1")
    sync_repository(library, Settings())  # the demo fits in 1 MiB
    (demo_repo / "data.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    run_git(demo_repo, "add", "data.bin")
    run_git(demo_repo, "commit", "-qm", "a large file")
    with pytest.raises(DoctuneError, match=r"holds 2 MiB at origin/main, more than DOCTUNE_MAX_REPO_MB=1"):
        sync_repository(library, Settings())
    assert not (settings.path("workspaces", library.name) / "repo" / "data.bin").exists()


def test_a_git_server_that_never_answers_is_given_up_on(settings: Settings) -> None:
    """A git daemon that accepts the connection and then says nothing: the fetch is stopped at the time limit."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        library = LibraryConfig(name="silent", repo_url=f"git://127.0.0.1:{server.getsockname()[1]}/repo.git")
        quick = settings.model_copy(update={"git_timeout_seconds": 2.0})
        with pytest.raises(DoctuneError, match=r"git took longer than 2 s on git://127.0.0.1:\d+/repo.git"):
            sync_repository(library, quick)
    assert not (settings.path("workspaces", "silent") / "repo").exists()


USER, TOKEN = "ci-bot", "s3cr3t-t0ken-value"


@pytest.fixture
def private_http_repo(demo_repo: Path) -> Iterator[str]:
    """The demo repository behind git's smart-HTTP backend (``git http-backend``) that demands basic auth."""
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"authentication required\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        cgi = {
            "GIT_PROJECT_ROOT": str(demo_repo.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": USER,
            **{k: str(environ.get(k, "")) for k in ("PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "CONTENT_TYPE")},
            "HTTP_CONTENT_ENCODING": str(environ.get("HTTP_CONTENT_ENCODING", "")),
            "CONTENT_LENGTH": str(length),
        }
        body = environ["wsgi.input"].read(length)
        out = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True, check=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [tuple(line.decode().split(": ", 1)) for line in head.split(b"\r\n") if line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start_response(status, [(k, v) for k, v in headers if k.lower() != "status"])
        return [payload]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep the server's access log out of the test output
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/{demo_repo.name}"
    server.shutdown()


def test_https_credentials_reach_git_through_askpass_only(
    settings: Settings, private_http_repo: str, caplog: pytest.LogCaptureFixture
) -> None:
    library = LibraryConfig(name="private", package="ledgerkite", repo_url=private_http_repo)
    refused = "refused access: it needs credentials, or the ones given were refused. In Airflow, set git_conn_id"
    with pytest.raises(DoctuneError, match=refused):
        sync_repository(library, settings)  # no credentials: refused, and no prompt hangs the task
    with pytest.raises(DoctuneError, match=refused):
        sync_repository(library, settings, credentials=GitCredentials(USER, "wrong-token"))

    caplog.set_level("DEBUG")
    tree, commit = sync_repository(library, settings, credentials=GitCredentials(USER, TOKEN))
    assert (tree / "ledgerkite" / "envelopes.py").is_file() and len(commit) == 40
    result = sync(library, settings, GitCredentials(USER, TOKEN))  # fetch into the existing clone
    assert result.commit == commit

    config = (tree / ".git" / "config").read_text()
    assert TOKEN not in config and USER not in config  # nothing stored with the clone
    assert TOKEN not in caplog.text and TOKEN not in repr(GitCredentials(USER, TOKEN))
    assert not list(Path(tempfile.gettempdir()).glob("doctune-askpass-*"))  # the askpass program is gone


def test_a_repository_that_becomes_unreachable_fails_sync_and_keeps_what_was_recorded(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    first = sync(library, settings)
    corpus.build(library, settings, first)
    demo_repo.rename(demo_repo.with_name("moved-away"))
    with pytest.raises(DoctuneError) as failure:
        sync(library, settings)
    message = str(failure.value)
    assert message.startswith(f"repository {library.repo_url} does not exist or is unreachable: check 'repo_url'")
    assert "\n" not in message  # one line in the task log
    snapshot = Registry.open(settings).latest_snapshot(library.name)
    assert snapshot is not None and snapshot.commit == first.commit  # the last good state is what stays recorded

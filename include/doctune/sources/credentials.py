"""Git credentials: an https user and token that reach git through an askpass program only, and URL redaction."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# The program git runs to ask for the user name and the password (a copy of it, executable by this user only).
ASKPASS = Path(__file__).with_name("askpass.sh")


@dataclass(frozen=True)
class GitCredentials:
    """User and token for an https repository (from an Airflow Connection); the token never reaches a URL,
    a command line, a log or a repr."""

    username: str
    password: str = field(repr=False)


@contextmanager
def git_env(credentials: GitCredentials | None) -> Iterator[dict[str, str]]:
    """The environment of every git command of a sync; with ``credentials``, an askpass program that answers git's
    prompts from it (the program exists only for the duration)."""
    env = {"GIT_TERMINAL_PROMPT": "0"}  # a missing credential must fail, not hang waiting for a prompt
    if credentials is None:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="doctune-askpass-") as tmp:
        askpass = Path(tmp) / "askpass"
        shutil.copyfile(ASKPASS, askpass)
        askpass.chmod(0o700)
        yield env | {
            "GIT_ASKPASS": str(askpass),
            "DOCTUNE_GIT_USERNAME": credentials.username,
            "DOCTUNE_GIT_PASSWORD": credentials.password,
        }


def redact_url(url: str) -> str:
    """Hide credentials embedded in a URL (https://user:token@host) before it reaches a log or an error."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", url)

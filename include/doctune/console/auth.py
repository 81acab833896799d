"""Login for the console: a configured key, exchanged once on the login page for a signed, HTTP-only cookie.

Keys are ``DOCTUNE_CONSOLE_KEYS`` (comma-separated, the same form as ``DOCTUNE_GATEWAY_API_KEYS``, but their
own: a key for the IDE endpoint does not grant promote and rollback). A session cookie names which key it came
from (a hash prefix, never the key) and carries an expiry, signed with HMAC under that key: removing a key from
the setting ends its sessions, a restart keeps them, and no extra secret needs to be configured.
With no key configured the console has no login and listens on 127.0.0.1 only (see ``main``).
"""

from __future__ import annotations

import hashlib
import hmac
import time

COOKIE = "doctune_console"
SESSION_SECONDS = 12 * 3600
# Failed logins one client address may make in a minute; then even the right key waits (guessing stays slow).
LOGIN_ATTEMPTS_PER_MINUTE = 10


def parse_keys(raw: str) -> list[str]:
    return [key.strip() for key in raw.split(",") if key.strip()]


def key_id(key: str) -> str:
    return hashlib.sha256(f"doctune-console-key:{key}".encode()).hexdigest()[:12]


def _signature(key: str, payload: str) -> str:
    return hmac.new(key.encode(), f"doctune-console-session:{payload}".encode(), hashlib.sha256).hexdigest()


def check_key(keys: list[str], given: str) -> str | None:
    """The configured key equal to ``given`` (constant-time comparisons), or None."""
    found = None
    for key in keys:
        if hmac.compare_digest(key.encode(), given.encode()):
            found = key
    return found


def make_session(key: str, now: float | None = None) -> str:
    payload = f"{key_id(key)}.{int((now or time.time()) + SESSION_SECONDS)}"
    return f"{payload}.{_signature(key, payload)}"


def valid_session(keys: list[str], cookie: str | None, now: float | None = None) -> bool:
    if not cookie or cookie.count(".") != 2:
        return False
    ident, expires, signature = cookie.split(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return False
    for key in keys:
        if hmac.compare_digest(key_id(key), ident):
            return hmac.compare_digest(_signature(key, f"{ident}.{expires}"), signature)
    return False

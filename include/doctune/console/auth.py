"""Login for the console: a user's key, exchanged once on the login page for a signed, HTTP-only cookie.

``DOCTUNE_CONSOLE_KEYS`` lists the users, comma-separated, each as ``USER:ROLE:KEY``: a *viewer* reads every page
and chats; an *operator* may also train, stop, resume, promote, roll back, load and unload. The keys are the
console's own (a key for the IDE endpoint does not grant promote and rollback). A session cookie names which
key it came from (a hash prefix, never the key) and carries an expiry, signed with HMAC under that key: removing
a user ends their sessions, a changed role applies at their next request, a restart keeps sessions, and no extra
secret needs to be configured. With no key configured the console has no login and listens on 127.0.0.1 only
(see ``main``): whoever is at the machine is its operator.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field

from doctune.errors import DoctuneError

COOKIE = "doctune_console"
SESSION_SECONDS = 12 * 3600
# Failed logins one client address may make in a minute; then even the right key waits (guessing stays slow).
LOGIN_ATTEMPTS_PER_MINUTE = 10
ROLES = ("viewer", "operator")
USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True)
class Login:
    user: str
    role: str
    key: str = field(repr=False)

    @property
    def operator(self) -> bool:
        return self.role == "operator"


LOCAL = Login("local", "operator", "")


def parse_keys(raw: str) -> list[str]:
    return [key.strip() for key in raw.split(",") if key.strip()]


def parse_logins(raw: str) -> list[Login]:
    """The users of ``DOCTUNE_CONSOLE_KEYS``; a malformed entry is refused by its position (never its key)."""
    logins: list[Login] = []
    for number, entry in enumerate(parse_keys(raw), 1):
        user, _, rest = entry.partition(":")
        role, _, key = rest.partition(":")
        problem = _entry_problem(Login(user, role, key), logins)
        if problem:
            raise DoctuneError(
                f"DOCTUNE_CONSOLE_KEYS entry {number} {problem}; write each user as USER:ROLE:KEY, "
                "e.g. alice:operator:<key>,bob:viewer:<key>"
            )
        logins.append(Login(user, role, key))
    return logins


def _entry_problem(login: Login, earlier: list[Login]) -> str | None:
    if not login.key:
        return "is not USER:ROLE:KEY"
    if not USER_NAME.fullmatch(login.user):
        return f"has user name {login.user!r}: use letters, digits and _.@- (at most 64)"
    if login.role not in ROLES:
        return f"has role {login.role!r}: use viewer or operator"
    if any(other.user == login.user for other in earlier):
        return f"repeats user {login.user!r}"
    if any(other.key == login.key for other in earlier):
        return "repeats another user's key"
    return None


def key_id(key: str) -> str:
    return hashlib.sha256(f"doctune-console-key:{key}".encode()).hexdigest()[:12]


def _signature(key: str, payload: str) -> str:
    return hmac.new(key.encode(), f"doctune-console-session:{payload}".encode(), hashlib.sha256).hexdigest()


def check_key(logins: list[Login], given: str) -> Login | None:
    """The user whose key equals ``given`` (constant-time comparisons, all of them), or None."""
    found = None
    for login in logins:
        if hmac.compare_digest(login.key.encode(), given.encode()):
            found = login
    return found


def make_session(login: Login, now: float | None = None) -> str:
    payload = f"{key_id(login.key)}.{int((now or time.time()) + SESSION_SECONDS)}"
    return f"{payload}.{_signature(login.key, payload)}"


def session_login(logins: list[Login], cookie: str | None, now: float | None = None) -> Login | None:
    """The user a session cookie belongs to, or None for a missing, expired, forged or revoked one."""
    if not cookie or cookie.count(".") != 2:
        return None
    ident, expires, signature = cookie.split(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    for login in logins:
        if hmac.compare_digest(key_id(login.key), ident):
            return login if hmac.compare_digest(_signature(login.key, f"{ident}.{expires}"), signature) else None
    return None

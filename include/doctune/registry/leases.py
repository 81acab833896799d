"""Leases: named, expiring locks in the registry database, so that two workers never sync one workspace or train
one library at once, and a holder that died (even by kill -9) releases them."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    delete,
    or_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.registry.tables import Lease

log = logging.getLogger(__name__)


def this_host() -> str:
    """The "host" of a lease holder: the worker's name where one is set (DOCTUNE_WORKER_NAME, also the hostname
    Airflow reports for its tasks), else the machine's. Containers on the host's network share its hostname but not
    their process ids, so a hostname alone would let one container take another's live lease for a dead pid."""
    return os.environ.get("DOCTUNE_WORKER_NAME") or socket.gethostname()


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` ("host:pid:nonce") is a process of this host that no longer exists: its lease is stale at
    once (a kill -9 here), without waiting for it to expire. A reused pid only makes us wait for the expiry."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != this_host() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Leases:
    """The lease methods of the registry; ``transaction`` is the registry's."""

    def transaction(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def acquire_lease(self, name: str, holder: str, ttl: float, *, replacing: str | None = None) -> bool:
        """Take ``name`` for ``ttl`` seconds if it is free, expired, already ``holder``'s or ``replacing``'s (a
        holder known to be dead). Atomic on both databases: a conditional update, else an insert that loses to a
        concurrent one on the primary key."""
        now = time.time()
        with self.transaction() as s:
            free = or_(Lease.expires_at < now, Lease.holder.in_([holder, replacing or holder]))
            taken = cast(
                CursorResult[Any],
                s.execute(update(Lease).where(Lease.name == name, free).values(holder=holder, expires_at=now + ttl)),
            ).rowcount
        if taken:
            return True
        try:
            with self.transaction() as s:
                s.add(Lease(name=name, holder=holder, expires_at=now + ttl))
        except IntegrityError:
            return False
        return True

    @contextmanager
    def exclusive(self, name: str, ttl: float, *, busy: str, why: str, on_lost: Callable[[], object]) -> Iterator[None]:
        """Hold lease ``name`` for the whole block, renewing it every third of ``ttl``; ``on_lost`` is called (from
        the renewing thread) if it is lost, so the holder can stop. Raises DoctuneError ("<busy> (<holder>, <n> s
        left unless renewed): <why>") when someone else holds it. A holder that is a dead process of this host
        is replaced at once."""
        holder = f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if not self._take_lease(name, holder, ttl):
            other = self.lease(name)
            left = f"{other.expires_at - time.time():.0f} s" if other else "a moment"
            raise DoctuneError(
                f"{busy} ({other.holder if other else 'just released'}, {left} left unless renewed): {why}"
            )
        released = threading.Event()

        def heartbeat() -> None:
            renewed = time.monotonic()
            while not released.wait(ttl / 3):
                try:
                    if self.renew_lease(name, holder, ttl):
                        renewed = time.monotonic()
                        continue
                    reason = "another holder took it"
                except Exception as exc:  # a database hiccup: keep trying until the lease would have run out
                    log.warning("could not renew the lease %s: %s", name, exc)
                    if time.monotonic() - renewed < ttl:
                        continue
                    reason = "it could not be renewed in time"
                log.error("lost the lease %s (%s): stopping", name, reason)
                on_lost()
                return

        thread = threading.Thread(target=heartbeat, name=f"lease-{name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            released.set()
            thread.join()
            self.release_lease(name, holder)

    def workspace_lease(
        self, library: LibraryConfig, settings: Settings, on_lost: Callable[[], object] = lambda: None
    ) -> AbstractContextManager[None]:
        """The library's workspace lease, held by a sync (while it fetches and checks out a commit's tree or prunes
        old ones) and by a corpus build (for as long as it reads the tree)."""
        return self.exclusive(
            f"workspace:{library.name}",
            settings.training_lease_seconds,
            busy=f"another sync or corpus build of {library.name} is using its workspace",
            why="two at once would check out different commits into one work tree and race for one dataset version; "
            "this one does not start. Retry when the other ends (the Airflow task retries).",
            on_lost=on_lost,
        )

    def _take_lease(self, name: str, holder: str, ttl: float) -> bool:
        if self.acquire_lease(name, holder, ttl):
            return True
        other = self.lease(name)
        if other is None:  # released between the two calls
            return self.acquire_lease(name, holder, ttl)
        if _dead_here(other.holder):
            log.warning("taking over %s from %s, a process that no longer exists", name, other.holder)
            return self.acquire_lease(name, holder, ttl, replacing=other.holder)
        return False

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend ``holder``'s lease; False if it is no longer theirs (it expired and someone else took it)."""
        with self.transaction() as s:
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=time.time() + ttl)
                ),
            )
        return bool(result.rowcount)

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as s:
            s.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))

    def lease(self, name: str) -> Lease | None:
        with self.transaction() as s:
            return s.get(Lease, name)

"""The sync stage: fetch the library, leave a checked-out tree of the commit for the corpus build, and say whether a
dataset version was built from that commit already."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from doctune.config import LibraryConfig, Settings
from doctune.registry import Registry
from doctune.sources.credentials import GitCredentials
from doctune.sources.repository import sync_repository
from doctune.sources.trees import commit_tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    """What the sync hands on: ``path`` is the checked-out tree of ``commit`` that the corpus build reads."""

    library: str
    commit: str
    path: str
    changed: bool  # False when the latest dataset version was built from this very commit
    dataset_version: int | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sync(
    library: LibraryConfig,
    settings: Settings,
    credentials: GitCredentials | None = None,
    commit: str | None = None,
) -> SyncResult:
    """Fetch the library's branch (or pin ``commit`` on it) and check out the commit's tree for the stages after it.

    ``changed`` is cheap: whether the commit differs from the latest dataset version's. Whether the doc surface
    changed is the corpus build's to decide, with its fingerprint of the tree.
    """
    registry = Registry.open(settings)
    with registry.workspace_lease(library, settings):
        repo, head = sync_repository(library, settings, commit, credentials)
        tree = commit_tree(repo, head, library, settings)
    latest = registry.latest_dataset(library.name)
    changed = latest is None or latest.commit != head
    if changed:
        log.info("%s at %s: a commit no dataset version was built from", library.name, head[:12])
    else:
        log.info(
            "%s at %s: the commit of dataset v%d; nothing to rebuild",
            library.name,
            head[:12],
            latest.version if latest else 0,
        )
    return SyncResult(
        library=library.name,
        commit=head,
        path=str(tree),
        changed=changed,
        dataset_version=latest.version if latest else None,
    )

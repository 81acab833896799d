"""Sources: the sync stage, which pins one commit of a library's git repository and checks out its tree.

- ``stage``: ``sync`` and its ``SyncResult`` (the commit and the path of its tree, which the corpus build reads);
- ``repository``: the workspace's clone, fetched within the time and size limits, git failures in one line;
- ``trees``: one checked-out tree per synced commit (a git worktree), the newest few kept;
- ``credentials``: https credentials through an askpass program only, URL redaction.
"""

from doctune.sources.credentials import GitCredentials, redact_url
from doctune.sources.repository import sync_repository
from doctune.sources.stage import SyncResult, sync

__all__ = ["GitCredentials", "SyncResult", "redact_url", "sync", "sync_repository"]

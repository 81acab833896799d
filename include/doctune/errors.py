"""The one exception type users see: its message names the thing that failed and what to do about it."""


class DoctuneError(Exception):
    """A failure with a message meant for the user (no traceback needed to act on it)."""

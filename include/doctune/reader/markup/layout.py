"""Line helpers of the block rules: blank lines, indentation as docutils counts it, dedenting, the end of an
indented block, a directive's options, fenced code."""

from __future__ import annotations

import re

_OPTION = re.compile(r":[A-Za-z][\w-]*:(?:[ \t]|$)")
_LONGEST_FENCE_INSIDE = re.compile(r"^[ \t]*(`{3,})", re.M)

# Indentation is measured often (every line, at every nesting level), so these avoid copying lines.
_LEADING_WHITESPACE = re.compile(r"[ \t]*")


def is_blank(line: str) -> bool:
    return not line or line.isspace()


def leading_whitespace(line: str) -> str:
    match = _LEADING_WHITESPACE.match(line)
    assert match is not None  # "[ \t]*" matches every string
    return line[: match.end()]


def indentation(line: str) -> int:
    """Columns of indentation; a tab counts up to the next multiple of 8, as docutils counts it."""
    leading = leading_whitespace(line)
    return len(leading.expandtabs(8)) if "\t" in leading else len(leading)


def dedent(lines: list[str]) -> list[str]:
    """The lines without their common indentation; blank lines become empty. Only leading tabs are expanded (a
    tab inside code stays a tab)."""
    columns = min((indentation(line) for line in lines if not is_blank(line)), default=0)
    dedented = []
    for line in lines:
        if is_blank(line):
            dedented.append("")
            continue
        leading = leading_whitespace(line)
        dedented.append(leading.expandtabs(8)[columns:] + line[len(leading) :])
    return dedented


def indented(lines: list[str], indent: str) -> list[str]:
    return [indent + line if line else "" for line in lines]


def trimmed(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and is_blank(lines[start]):
        start += 1
    while end > start and is_blank(lines[end - 1]):
        end -= 1
    return lines[start:end]


def block_end(lines: list[str], start: int, indent: int) -> int:
    """Where the block indented deeper than ``indent`` that starts at ``start`` ends (its trailing blank lines
    are not part of it: they separate it from what follows)."""
    end = start
    while end < len(lines) and (is_blank(lines[end]) or indentation(lines[end]) > indent):
        end += 1
    while end > start and is_blank(lines[end - 1]):
        end -= 1
    return end


def without_options(lines: list[str]) -> list[str]:
    """A directive's content without the options that open it: ``:caption: x`` lines (reST and MyST; a wrapped
    value continues on deeper-indented lines) or a MyST ``---`` YAML block."""
    if lines and lines[0].strip() == "---":
        closing = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        return lines[closing + 1 :] if closing is not None else lines
    start = 0
    while start < len(lines) and _OPTION.match(lines[start]):
        start += 1
        while start < len(lines) and lines[start][:1] in (" ", "\t") and not is_blank(lines[start]):
            start += 1
    return lines[start:]


def fenced_block(code: list[str], language: str) -> list[str]:
    code = trimmed(dedent(code))
    if not code:
        return []
    # A fence longer than any fence inside the code, so that code showing a Markdown fence does not close it.
    inner = max((len(run) for run in _LONGEST_FENCE_INSIDE.findall("\n".join(code))), default=2)
    fence = "`" * max(3, inner + 1)
    return [f"{fence}{language}", *code, fence]

"""Inline markup inside a paragraph: Sphinx and MyST roles, reST ``literals``, hyperlink and footnote references."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator

_ROLE_NAME = r"[A-Za-z][\w.+-]*(?::[A-Za-z][\w.+-]*)*"
# A role is a name right before a backquoted span: ":func:`x`" (reST, optionally ":py:func:") or "{func}`x`" (MyST).
_ROLE_PREFIX = re.compile(rf"(?::(?P<rest>{_ROLE_NAME}):|\{{(?P<myst>{_ROLE_NAME})\}})$")
_ROLE_PREFIX_WINDOW = 80  # the longest role name looked for before a span, in characters
_EXPLICIT_TITLE = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^<>]*)>", re.S)  # "title <target>", as Sphinx reads it
_LINK_SUFFIX = re.compile(r"__?(?!\w)")
_BACKQUOTES = re.compile(r"`+")
# "[1]_", "[#]_", "[#note]_", "[*]_", "[CIT2002]_". Not when the reference is followed by what could close an
# enclosing bracket ("[a [1]_]_"): removing it there would make a new reference and break idempotence.
_FOOTNOTE_REFERENCE = re.compile(r"[ \t]?\[(?:\d+|#[\w-]*|\*|[A-Za-z][\w.-]*)\]_(?!\w)(?![\w.#*-]*\])")

# Roles Sphinx renders as code (cross-references to code objects and literal roles), whatever their domain.
_CODE_ROLES = frozenset(
    {
        "func",
        "meth",
        "class",
        "attr",
        "exc",
        "data",
        "const",
        "mod",
        "obj",
        "option",
        "envvar",
        "type",
        "deco",
        "member",
        "var",
        "macro",
        "enum",
        "enumerator",
        "struct",
        "union",
        "expr",
        "texpr",
        "function",
        "method",
        "attribute",
        "exception",
        "property",
        "any",
        "keyword",
        "token",
    }
)
# Literal roles have no "title <target>" form: their text is shown as written, "<" and all.
_LITERAL_ROLES = frozenset(
    {"code", "literal", "samp", "file", "kbd", "math", "regexp", "mimetype", "makevar", "command", "program"}
)
_NUMBERED_ROLES = {"pep": "PEP", "rfc": "RFC"}
_TRACKER_ROLES = {"issue": "#", "pr": "#", "user": "@"}  # sphinx-issues, common in changelogs: "#123", "@octocat"


def _code_spans(text: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, backquotes) of each Markdown code span, paired as CommonMark pairs them: a run of backquotes
    opens a span that the next run of the same length closes. Roles and reST literals are code spans with
    something around them, so reading spans first keeps ``:func:`` inside an existing code span out of reach."""
    runs = [(m.start(), m.end() - m.start()) for m in _BACKQUOTES.finditer(text)]
    runs_by_length: dict[int, list[int]] = {}
    for index, (_, length) in enumerate(runs):
        runs_by_length.setdefault(length, []).append(index)
    index = 0
    while index < len(runs):
        start, length = runs[index]
        same_length = runs_by_length[length]
        closing = bisect_right(same_length, index)
        if closing == len(same_length):
            index += 1  # an unmatched run is literal text
            continue
        close_index = same_length[closing]
        yield start, runs[close_index][0] + length, length
        index = close_index + 1


def _role_before(text: str, position: int) -> tuple[str, int] | None:
    """The role name written right before ``position`` and where its prefix starts, if one is."""
    window_start = max(0, position - _ROLE_PREFIX_WINDOW)
    match = _ROLE_PREFIX.search(text[window_start:position])
    if match is None:
        return None
    start = window_start + match.start()
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return None  # "time:12:`x`" or "a:b:`c`" is not a role: reST wants a role to start a word
    return (match["rest"] or match["myst"]).lower(), start


def _role(name: str, content: str) -> str:
    """How Sphinx would show a role, as Markdown."""
    kind = name.rpartition(":")[2]  # the domain ("py:", "c:") does not change how a role reads
    content = " ".join(content.split())  # a role may wrap across lines
    if kind in _LITERAL_ROLES:
        return f"`{content}`"
    explicit = _EXPLICIT_TITLE.fullmatch(content)
    title, target = (explicit["title"], explicit["target"]) if explicit else ("", content)
    if kind in _CODE_ROLES:
        if not title:
            # Sphinx's display rules: "!" only suppresses the link, a leading "." asks for a relative lookup,
            # "~" shows the last dotted part only.
            title = target.lstrip("!").lstrip(".")
            if title.startswith("~"):
                title = title[1:].rpartition(".")[2]
        return f"`{title}`" if title else ""
    if kind in _NUMBERED_ROLES:
        return title or f"{_NUMBERED_ROLES[kind]} {target.partition('#')[0]}"
    if kind in _TRACKER_ROLES:
        return title or f"{_TRACKER_ROLES[kind]}{target}"
    return title or target  # ref, doc, term and roles Sphinx renders as text (abbr, guilabel, extlinks...)


def _link(content: str) -> str:
    """A reST hyperlink reference, ```text <url>`_`` or ```text`_``, as Markdown (```<url>`_`` keeps its angle
    brackets: a Markdown autolink)."""
    explicit = _EXPLICIT_TITLE.fullmatch(content)
    if explicit is None:
        return " ".join(content.split())
    text, target = " ".join(explicit["title"].split()), explicit["target"].strip()
    if not target or target.endswith("_"):  # "<label_>" names another target: only the text is left to show
        return text
    return f"[{text}]({target})"


def inline(text: str) -> str:
    """A paragraph with its roles, reST literals, hyperlinks and footnote references as Markdown."""
    pieces: list[str] = []
    cursor = 0
    for start, end, backquotes in _code_spans(text):
        content = text[start + backquotes : end - backquotes]
        replaced_from, replaced_to, replacement = start, end, None
        if backquotes == 2 and "`" not in content and content.strip() == content and content:
            replacement = f"`{content}`"  # ``literal``: Markdown writes it with one backquote
        elif backquotes == 1:
            role = _role_before(text, start)
            suffix = _LINK_SUFFIX.match(text, end)
            if role is not None:
                replacement, replaced_from = _role(role[0], content), role[1]
            elif suffix is not None:
                replacement, replaced_to = _link(content), suffix.end()
        if replacement is not None:
            # reST's escaped space joins markup to a word ("``Rocket``\\ s", "non-\\ :func:`x`"); Markdown would
            # show the backslash.
            pieces.append(_FOOTNOTE_REFERENCE.sub("", text[cursor:replaced_from].removesuffix("\\ ")))
            pieces.append(replacement)
            cursor = replaced_to + 2 if text.startswith("\\ ", replaced_to) else replaced_to
        else:
            pieces.append(_FOOTNOTE_REFERENCE.sub("", text[cursor:start]))
            pieces.append(text[start:end])  # a Markdown code span (or reST default role): already Markdown
            cursor = end
    pieces.append(_FOOTNOTE_REFERENCE.sub("", text[cursor:]))
    return "".join(pieces)

"""Documentation markup -> plain Markdown, so that Sphinx/reST and MyST syntax never reaches a training answer.

A model trained on ``:func:`launch``` or ``.. code-block:: python`` learns to answer in markup that renders only
inside Sphinx; users read answers as Markdown. ``plain`` is applied to every text an answer is built from:
docstrings, Markdown doc sections, the text docutils extracted from ``.rst`` files (which still holds roles as raw
text, since plain docutils does not know Sphinx's roles) and changelog entries. It cannot know which of these it
was given, so one set of rules reads all of them: Markdown and reST syntax barely collide, and where they do
(backquotes) the Markdown reading wins.

The conversion is line based rather than a docutils/markdown-it parse: it must never raise on broken markup (a
half-written docstring is still worth an answer), stay fast on a 1 MB file, and leave everything it does not
recognise byte for byte as it was, which a parse and re-render would not. Two readers downstream depend on that:
the docstring section parser (``Args:``, NumPy ``Parameters`` with its ``----------`` underline, ``:param x:``
field lists) and the code-block filter (fenced ``python`` blocks).

Block rules, in the order a line is tried:

- a Markdown fence passes through untouched; a MyST directive fence (```` ```{note} ````, ``:::{note}``) is
  rendered like the reST directive of the same name;
- reST explicit markup (``.. name:: argument`` plus its indented block) is rendered by directive name; comments,
  ``.. _label:`` targets, substitution definitions and footnote bodies are dropped;
- a MyST ``(label)=`` target line is dropped;
- a doctest (``>>>`` up to a blank line) passes through, since it is code;
- a paragraph ending in ``::`` followed by an indented block becomes ``paragraph:`` and a fenced block;
- anything else is prose, converted inline paragraph by paragraph: roles, ``literals``, hyperlinks, footnote
  references.

Bodies of directives are converted recursively, a bounded number of levels deep: real documents nest two or
three levels, and the bound keeps adversarial input linear and clear of Python's recursion limit.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from collections.abc import Iterator

__all__ = ["plain"]

MAX_NESTING = 8  # directive bodies converted this many levels deep; deeper ones are left as they are
# A conversion can expose markup of its own: ``literal`` inside a role's title, a footnote reference removed from
# before ".. ". So the rules run until the text stops changing; realistic text settles in one round (plus the one
# that shows it settled), only adversarial text needs the rest.
MAX_ROUNDS = 4

# -- inline: roles, literals, hyperlinks, footnote references -------------------------------------------------

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


def _inline(text: str) -> str:
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


# -- directives ------------------------------------------------------------------------------------------------

# Directive name -> the language its code is in when its argument does not say.
_CODE_DIRECTIVES = {
    "code-block": "python",
    "code": "python",
    "sourcecode": "python",
    "code-cell": "python",
    "testcode": "python",
    "doctest": "python",  # prompts and all: ```python rather than ```pycon, like every other Python block here
    "jupyter-execute": "python",
    "ipython": "ipython",
    "testoutput": "",
}
_LANGUAGE_ARGUMENT = frozenset({"code-block", "code", "sourcecode", "code-cell"})
# Quarto and R Markdown write executable cells as ```{python}: a language in braces is code, not a directive.
_CELL_LANGUAGES = frozenset({"python", "python3", "ipython3", "r", "julia", "bash", "sh", "ojs", "sql"})
_ADMONITIONS = {
    name: name.capitalize()
    for name in ("attention", "caution", "danger", "error", "hint", "important", "note", "tip", "warning", "todo")
} | {"seealso": "See also"}  # as Sphinx titles it; "Seealso" reads as a typo
_VERSION_NOTES = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}
# Hand-written API descriptions (".. function:: launch(fuel)" + its text): the text is the documentation itself.
_OBJECT_DESCRIPTIONS = frozenset(
    {
        "function",
        "class",
        "method",
        "classmethod",
        "staticmethod",
        "attribute",
        "property",
        "data",
        "exception",
        "decorator",
        "decoratormethod",
        "describe",
        "object",
    }
)
_CONTAINERS = frozenset({"container", "compound", "glossary", "hlist"})  # their argument is a style, not text
_TITLED = frozenset({"rubric", "topic", "sidebar"})  # their argument is a heading
# Directives whose body is not prose a reader needs (navigation, generated API, media, build switches, tests'
# hidden setup). Together with "auto*" (autodoc, autosummary, ...); any other directive whose body does not read
# like prose is dropped too, so this list only saves asking.
_DROPPED = frozenset(
    {
        "toctree",
        "currentmodule",
        "module",
        "index",
        "image",
        "figure",
        "include",
        "literalinclude",
        "raw",
        "only",
        "ifconfig",
        "tabs",
        "tab",
        "tab-set",
        "tab-item",
        "code-tab",
        "group-tab",
        "highlight",
        "testsetup",
        "testcleanup",
        "math",
        "csv-table",
        "list-table",
        "table",
        "graphviz",
        "digraph",
        "graph",
        "inheritance-diagram",
        "mermaid",
        "plantuml",
        "plot",
        "contents",
        "sectnum",
        "default-role",
        "role",
        "meta",
        "title",
        "rst-class",
        "program",
        "productionlist",
    }
)

_EXPLICIT_MARKUP = re.compile(r"(?P<indent>[ \t]*)\.\.(?:[ \t]+(?P<rest>.*)|[ \t]*)$")
_DIRECTIVE = re.compile(r"(?P<name>[A-Za-z0-9](?:[\w.+-]|:(?!:))*) ?::(?:[ \t]+(?P<argument>.*)|[ \t]*)")
_OPTION = re.compile(r":[A-Za-z][\w-]*:(?:[ \t]|$)")
_FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}(?=[^`]*$)|~{3,}|:{3,}(?=\{))(?P<info>.*)")
_MYST_DIRECTIVE = re.compile(r"\{(?P<name>[A-Za-z0-9][\w.:+-]*)\}(?P<argument>.*)")
_MYST_TARGET = re.compile(r"[ \t]*\([^()\s]+\)=[ \t]*")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d+[.)]|#\.)[ \t]+")
# A line that would not read as the continuation of "**Note:** ": it starts a block of its own.
_BLOCK_START = re.compile(
    r"[ \t]|[-*+][ \t]|\d+[.)][ \t]|#{1,6}(?:[ \t]|$)|[>|]|`{3,}|~{3,}|:{3,}|\.\.(?:[ \t]|$)|:[\w-]+:|[-=+_*]{3,}"
)
_UNDERLINE = re.compile(r"([=\-~^\"'`#*+:._])\1{2,}[ \t]*$")
_PROSE = re.compile(r"[*_`\"'(]*[A-Za-z][\w'’,;.!?-]*[ \t]+\S")
_LONGEST_FENCE_INSIDE = re.compile(r"^[ \t]*(`{3,})", re.M)


# Indentation is measured often (every line, at every nesting level), so these avoid copying lines.
_LEADING_WHITESPACE = re.compile(r"[ \t]*")


def _blank(line: str) -> bool:
    return not line or line.isspace()


def _leading(line: str) -> str:
    match = _LEADING_WHITESPACE.match(line)
    assert match is not None  # "[ \t]*" matches every string
    return line[: match.end()]


def _indent(line: str) -> int:
    """Columns of indentation; a tab counts up to the next multiple of 8, as docutils counts it."""
    leading = _leading(line)
    return len(leading.expandtabs(8)) if "\t" in leading else len(leading)


def _dedent(lines: list[str]) -> list[str]:
    """The lines without their common indentation; blank lines become empty. Only leading tabs are expanded (a
    tab inside code stays a tab)."""
    columns = min((_indent(line) for line in lines if not _blank(line)), default=0)
    dedented = []
    for line in lines:
        if _blank(line):
            dedented.append("")
            continue
        leading = _leading(line)
        dedented.append(leading.expandtabs(8)[columns:] + line[len(leading) :])
    return dedented


def _indented(lines: list[str], indent: str) -> list[str]:
    return [indent + line if line else "" for line in lines]


def _trimmed(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and _blank(lines[start]):
        start += 1
    while end > start and _blank(lines[end - 1]):
        end -= 1
    return lines[start:end]


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Where the block indented deeper than ``indent`` that starts at ``start`` ends (its trailing blank lines
    are not part of it: they separate it from what follows)."""
    end = start
    while end < len(lines) and (_blank(lines[end]) or _indent(lines[end]) > indent):
        end += 1
    while end > start and _blank(lines[end - 1]):
        end -= 1
    return end


def _without_options(lines: list[str]) -> list[str]:
    """A directive's content without the options that open it: ``:caption: x`` lines (reST and MyST; a wrapped
    value continues on deeper-indented lines) or a MyST ``---`` YAML block."""
    if lines and lines[0].strip() == "---":
        closing = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        return lines[closing + 1 :] if closing is not None else lines
    start = 0
    while start < len(lines) and _OPTION.match(lines[start]):
        start += 1
        while start < len(lines) and lines[start][:1] in (" ", "\t") and not _blank(lines[start]):
            start += 1
    return lines[start:]


def _fenced(code: list[str], language: str) -> list[str]:
    code = _trimmed(_dedent(code))
    if not code:
        return []
    # A fence longer than any fence inside the code, so that code showing a Markdown fence does not close it.
    inner = max((len(run) for run in _LONGEST_FENCE_INSIDE.findall("\n".join(code))), default=2)
    fence = "`" * max(3, inner + 1)
    return [f"{fence}{language}", *code, fence]


def _led(lead: str, content: list[str], depth: int, alone: str = "") -> list[str]:
    """``lead`` (``**Note:**``) followed by the converted content: on the same line when the content opens with
    a plain sentence, on a line of its own before a list, a code block or a heading. ``alone`` is what to write
    when there is no content (an admonition without a body says nothing and is dropped)."""
    converted = _trimmed(_blocks(content, depth + 1))
    if not converted:
        return [alone] if alone else []
    first, rest = converted[0], converted[1:]
    if _BLOCK_START.match(first) or (rest and _UNDERLINE.match(rest[0])):
        return [lead, "", *converted]
    return [f"{lead} {first}", *rest]


def _label(title: str) -> str:
    title = " ".join(title.split()).rstrip(":")
    return f"**{title}**" if title.endswith((".", "!", "?")) else f"**{title}:**"


def _directive(name: str, argument: str, body: list[str], depth: int) -> list[str]:
    """A directive (reST or MyST) as Markdown lines, unindented. ``body`` is its content, dedented and without
    options; ``argument`` the text after ``::`` (or after ``{name}``)."""
    kind = name.lower().rpartition(":")[2]  # "py:function" reads as "function"
    with_argument = [argument, *body] if argument else body  # an admonition's text may start on its first line
    if kind in _CODE_DIRECTIVES:
        written = argument.split()[0] if argument and kind in _LANGUAGE_ARGUMENT else ""
        return _fenced(body, written or _CODE_DIRECTIVES[kind])
    if kind in _ADMONITIONS:
        return _led(_label(_ADMONITIONS[kind]), with_argument, depth)
    if kind == "admonition":
        return _led(_label(_inline(argument) or "Note"), body, depth)
    if kind in _VERSION_NOTES:
        version, _, explanation = argument.partition(" ")
        note = f"{_VERSION_NOTES[kind]} {version}".rstrip()
        explained = [explanation.strip(), *body] if explanation.strip() else body
        return _led(f"*{note}:*", explained, depth, alone=f"*{note}.*")
    if kind == "eval-rst":
        return _trimmed(_blocks(body, depth + 1))
    if kind in _OBJECT_DESCRIPTIONS:
        signature = [f"`{argument}`" if "`" not in argument else argument] if argument else []
        described = _trimmed(_blocks(body, depth + 1))
        return [*signature, "", *described] if signature and described else signature or described
    if kind in _CONTAINERS:
        return _trimmed(_blocks(body, depth + 1))
    if kind in _TITLED:
        heading = [f"**{_inline(argument)}**"] if argument else []
        content = _trimmed(_blocks(body, depth + 1))
        return [*heading, "", *content] if heading and content else heading or content
    if kind in _DROPPED or kind.startswith("auto"):
        return []
    # An unknown directive: keep it only if it is admonition-like, i.e. its text reads like a sentence (a custom
    # ".. experimental::" note) rather than a list of names or paths.
    first_line = next((line.strip() for line in with_argument if line.strip()), "")
    if _PROSE.match(first_line):
        return _led(_label(kind.replace("-", " ").replace("_", " ").capitalize()), with_argument, depth)
    return []


def _explicit_markup(markup: re.Match[str], block: list[str], depth: int) -> list[str]:
    """A reST ``..`` construct and its indented block, as Markdown lines at the construct's indentation."""
    directive = _DIRECTIVE.fullmatch(markup["rest"] or "")
    if directive is None:
        return []  # comment, ".. _label:" target, "|substitution|" definition, "[1]" footnote: nothing to read
    body = _dedent(_without_options(_dedent(block)))
    rendered = _directive(directive["name"], (directive["argument"] or "").strip(), body, depth)
    return _indented(rendered, markup["indent"])


def _closes(line: str, fence_char: str, length: int) -> bool:
    stripped = line.strip(" \t")
    return len(stripped) >= length and stripped == fence_char * len(stripped)


def _fence_block(lines: list[str], start: int, fence: re.Match[str], depth: int) -> tuple[list[str], int]:
    """A fenced block starting at ``start``: Markdown code as it is, a MyST directive rendered. Returns the
    output lines and the index after the closing fence (an unclosed fence runs to the end, as in CommonMark)."""
    fence_char, length = fence["fence"][0], len(fence["fence"])
    end = next((i for i in range(start + 1, len(lines)) if _closes(lines[i], fence_char, length)), len(lines))
    directive = _MYST_DIRECTIVE.fullmatch(fence["info"].strip())
    if directive is None or depth >= MAX_NESTING:
        return lines[start : end + 1], end + 1
    body = _dedent(_without_options(_dedent(lines[start + 1 : end])))
    if directive["name"].lower() in _CELL_LANGUAGES:
        return _indented(_fenced(body, directive["name"].lower()), fence["indent"]), end + 1
    rendered = _directive(directive["name"], directive["argument"].strip(), body, depth)
    return _indented(rendered, fence["indent"]), end + 1


def _looks_like_python(code: list[str]) -> bool:
    """Whether a literal block is Python, the language Sphinx highlights literal blocks in by default."""
    if code[0].startswith(">>>"):  # code is dedented and starts at its first line that is not blank
        return True
    try:
        ast.parse("\n".join(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: "too complex to parse"
        return False
    return True


def _literal_block(lines: list[str], index: int) -> tuple[str, list[str], int] | None:
    """A paragraph line ending in ``::`` and the indented block after it: the line as it should read (empty for
    a ``::`` alone on its line, which stands for nothing but the block), the lines that follow it (blank ones,
    then the fenced block) and the index after the block. None when a paragraph's ``::`` has no indented block
    after it: then the line is just text."""
    line = lines[index]
    stripped = line.strip()
    if not stripped.endswith("::") or (stripped != "::" and set(stripped) == {":"}):
        return None  # "::::::" is a section underline, not a literal block marker
    first = index + 1
    while first < len(lines) and _blank(lines[first]):
        first += 1
    own_indent = _indent(line)
    if first == len(lines) or _indent(lines[first]) <= own_indent:
        return ("", [], index + 1) if stripped == "::" else None
    end = _block_end(lines, first, own_indent)
    code = _dedent(lines[first:end])
    # The fence goes where the paragraph's text starts: under a list item's text, not under its bullet.
    item = _LIST_ITEM.match(line)
    fence_indent = _leading(line)
    if item is not None and _indent(lines[first]) >= len(item[0].expandtabs(8)):
        fence_indent = " " * len(item[0].expandtabs(8))
    fenced = _indented(_fenced(code, "python" if _looks_like_python(code) else ""), fence_indent)
    if stripped == "::":
        return "", fenced, end
    text = line.rstrip()
    # reST: "text::" reads "text:", and "text ::" reads "text" (the marker was only a marker).
    text = text[:-2].rstrip() if text[-3:-2].isspace() else text.rstrip(":") + ":"
    return text, [*lines[index + 1 : first], *fenced], end


# -- blocks ----------------------------------------------------------------------------------------------------


def _blocks(lines: list[str], depth: int) -> list[str]:
    out: list[str] = []
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            out.extend(_inline("\n".join(paragraph)).split("\n"))
            paragraph.clear()

    def emit(block: list[str], after: int) -> int:
        """Writes a converted construct. One that came to nothing takes the blank lines after it along, so that a
        dropped toctree or comment leaves one paragraph break rather than two or three."""
        out.extend(block)
        if not block and (not out or _blank(out[-1])):
            while after < len(lines) and _blank(lines[after]):
                after += 1
        return after

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        markup = _EXPLICIT_MARKUP.match(line) if depth < MAX_NESTING else None
        if fence is not None:
            end_paragraph()
            index = emit(*_fence_block(lines, index, fence, depth))
        elif markup is not None:
            end_paragraph()
            end = _block_end(lines, index + 1, _indent(line))
            index = emit(_explicit_markup(markup, lines[index + 1 : end], depth), end)
        elif _MYST_TARGET.fullmatch(line):
            end_paragraph()
            index = emit([], index + 1)
        elif line.lstrip().startswith(">>>"):
            end_paragraph()
            own_indent = _indent(line)
            end = index + 1
            while end < len(lines) and not _blank(lines[end]) and _indent(lines[end]) >= own_indent:
                end += 1
            out.extend(lines[index:end])
            index = end
        elif _blank(line):
            end_paragraph()
            out.append(line)
            index += 1
        elif (literal := _literal_block(lines, index)) is not None:
            text, following, end = literal
            if text:
                paragraph.append(text)
            end_paragraph()
            index = emit(following, end)
        else:
            paragraph.append(line)
            index += 1
    end_paragraph()
    return out


def plain(text: str) -> str:
    """``text`` (a docstring, a Markdown or reST document, a changelog entry) with its Sphinx, reST and MyST
    markup turned into plain Markdown; Markdown, docstring sections (``Args:``, NumPy underlines, ``:param x:``
    fields) and anything unrecognised are kept as they are. Windows line ends become ``\\n``.

    Never raises, and is idempotent, ``plain(plain(t)) == plain(t)``: the rules run to a fixed point (only
    adversarial input could need more than ``MAX_ROUNDS`` rounds to reach it)."""
    converted = text.replace("\r\n", "\n")
    for _ in range(MAX_ROUNDS):
        once = "\n".join(_blocks(converted.split("\n"), 0))
        if once == converted:
            break
        converted = once
    return converted

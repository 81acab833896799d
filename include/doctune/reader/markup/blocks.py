"""The block rules, in the order a line is tried (see the package's docstring), and ``plain``, which runs them
until the text stops changing."""

from __future__ import annotations

import ast
import re

from doctune.reader.markup.directives import (
    ADMONITIONS,
    CELL_LANGUAGES,
    CODE_DIRECTIVES,
    CONTAINERS,
    DROPPED,
    LANGUAGE_ARGUMENT,
    OBJECT_DESCRIPTIONS,
    TITLED,
    VERSION_NOTES,
)
from doctune.reader.markup.inline import inline
from doctune.reader.markup.layout import (
    block_end,
    dedent,
    fenced_block,
    indentation,
    indented,
    is_blank,
    leading_whitespace,
    trimmed,
    without_options,
)

MAX_NESTING = 8  # directive bodies converted this many levels deep; deeper ones are left as they are
# A conversion can expose markup of its own: ``literal`` inside a role's title, a footnote reference removed from
# before ".. ". So the rules run until the text stops changing; realistic text settles in one round (plus the one
# that shows it settled), only adversarial text needs the rest.
MAX_ROUNDS = 4

_EXPLICIT_MARKUP = re.compile(r"(?P<indent>[ \t]*)\.\.(?:[ \t]+(?P<rest>.*)|[ \t]*)$")
_DIRECTIVE = re.compile(r"(?P<name>[A-Za-z0-9](?:[\w.+-]|:(?!:))*) ?::(?:[ \t]+(?P<argument>.*)|[ \t]*)")
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


def _led(lead: str, content: list[str], depth: int, alone: str = "") -> list[str]:
    """``lead`` (``**Note:**``) followed by the converted content: on the same line when the content opens with
    a plain sentence, on a line of its own before a list, a code block or a heading. ``alone`` is what to write
    when there is no content (an admonition without a body says nothing and is dropped)."""
    converted = trimmed(_blocks(content, depth + 1))
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
    if kind in CODE_DIRECTIVES:
        written = argument.split()[0] if argument and kind in LANGUAGE_ARGUMENT else ""
        return fenced_block(body, written or CODE_DIRECTIVES[kind])
    if kind in ADMONITIONS:
        return _led(_label(ADMONITIONS[kind]), with_argument, depth)
    if kind == "admonition":
        return _led(_label(inline(argument) or "Note"), body, depth)
    if kind in VERSION_NOTES:
        version, _, explanation = argument.partition(" ")
        note = f"{VERSION_NOTES[kind]} {version}".rstrip()
        explained = [explanation.strip(), *body] if explanation.strip() else body
        return _led(f"*{note}:*", explained, depth, alone=f"*{note}.*")
    if kind == "eval-rst":
        return trimmed(_blocks(body, depth + 1))
    if kind in OBJECT_DESCRIPTIONS:
        signature = [f"`{argument}`" if "`" not in argument else argument] if argument else []
        described = trimmed(_blocks(body, depth + 1))
        return [*signature, "", *described] if signature and described else signature or described
    if kind in CONTAINERS:
        return trimmed(_blocks(body, depth + 1))
    if kind in TITLED:
        heading = [f"**{inline(argument)}**"] if argument else []
        content = trimmed(_blocks(body, depth + 1))
        return [*heading, "", *content] if heading and content else heading or content
    if kind in DROPPED or kind.startswith("auto"):
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
    body = dedent(without_options(dedent(block)))
    rendered = _directive(directive["name"], (directive["argument"] or "").strip(), body, depth)
    return indented(rendered, markup["indent"])


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
    body = dedent(without_options(dedent(lines[start + 1 : end])))
    if directive["name"].lower() in CELL_LANGUAGES:
        return indented(fenced_block(body, directive["name"].lower()), fence["indent"]), end + 1
    rendered = _directive(directive["name"], directive["argument"].strip(), body, depth)
    return indented(rendered, fence["indent"]), end + 1


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
    while first < len(lines) and is_blank(lines[first]):
        first += 1
    own_indent = indentation(line)
    if first == len(lines) or indentation(lines[first]) <= own_indent:
        return ("", [], index + 1) if stripped == "::" else None
    end = block_end(lines, first, own_indent)
    code = dedent(lines[first:end])
    # The fence goes where the paragraph's text starts: under a list item's text, not under its bullet.
    item = _LIST_ITEM.match(line)
    fence_indent = leading_whitespace(line)
    if item is not None and indentation(lines[first]) >= len(item[0].expandtabs(8)):
        fence_indent = " " * len(item[0].expandtabs(8))
    fenced = indented(fenced_block(code, "python" if _looks_like_python(code) else ""), fence_indent)
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
            out.extend(inline("\n".join(paragraph)).split("\n"))
            paragraph.clear()

    def emit(block: list[str], after: int) -> int:
        """Writes a converted construct. One that came to nothing takes the blank lines after it along, so that a
        dropped toctree or comment leaves one paragraph break rather than two or three."""
        out.extend(block)
        if not block and (not out or is_blank(out[-1])):
            while after < len(lines) and is_blank(lines[after]):
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
            end = block_end(lines, index + 1, indentation(line))
            index = emit(_explicit_markup(markup, lines[index + 1 : end], depth), end)
        elif _MYST_TARGET.fullmatch(line):
            end_paragraph()
            index = emit([], index + 1)
        elif line.lstrip().startswith(">>>"):
            end_paragraph()
            own_indent = indentation(line)
            end = index + 1
            while end < len(lines) and not is_blank(lines[end]) and indentation(lines[end]) >= own_indent:
                end += 1
            out.extend(lines[index:end])
            index = end
        elif is_blank(line):
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

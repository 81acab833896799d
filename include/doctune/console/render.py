"""Model answers as HTML: fenced code blocks highlighted with Pygments (server-side, no CDN), the rest escaped."""

from __future__ import annotations

import re
from functools import cache
from html import escape

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
CSS_CLASS = "hl"


@cache
def stylesheet() -> str:
    return str(HtmlFormatter(cssclass=CSS_CLASS, style="friendly").get_style_defs(f".{CSS_CLASS}"))


def _code(source: str, language: str) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else PythonLexer()  # a coding model's default
    except ClassNotFound:
        lexer = TextLexer()
    return str(highlight(source, lexer, HtmlFormatter(cssclass=CSS_CLASS)))


def _prose(text: str) -> str:
    html = INLINE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text))
    return "".join(f"<p>{part.strip().replace(chr(10), '<br>')}</p>" for part in html.split("\n\n") if part.strip())


def answer_html(text: str) -> str:
    """An answer with its code blocks highlighted; an unterminated block (a cut-off answer) still counts."""
    out, last = [], 0
    for match in FENCE.finditer(text):
        out.append(_prose(text[last : match.start()]))
        out.append(_code(match.group(2), match.group(1).lower()))
        last = match.end()
    out.append(_prose(text[last:]))
    return "".join(out)

"""Documents -> units: Markdown and reST sections by heading path, plain-text chunks, changelog sections by
version and category, and each test function as a usage example."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import PurePosixPath
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from packaging.version import InvalidVersion, Version

from doctune.reader.extract.files import MARKDOWN
from doctune.reader.markup import plain
from doctune.reader.pyapi import parse_python
from doctune.reader.units import Unit


def _doc_unit(rel: str, title: str, body: str, examples: tuple[str, ...]) -> Unit | None:
    body = body.strip()
    if len(body) < 20:
        return None
    return Unit(key=f"doc:{rel}#{title}", kind="doc", path=rel, title=title, text=body, examples=examples)


def markdown_units(rel: str, text: str) -> list[Unit]:
    """Sections by heading path. LangChain's syntax-aware splitter keeps code blocks whole and indented (the
    classic MarkdownHeaderTextSplitter strips every line, which breaks Python examples)."""
    from langchain_text_splitters.markdown import ExperimentalMarkdownSyntaxTextSplitter

    splitter = ExperimentalMarkdownSyntaxTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=True
    )
    sections: dict[str, tuple[list[str], list[str]]] = {}
    # MyST directives and Sphinx roles become plain Markdown first: ```{doctest} blocks are Python examples then.
    for chunk in splitter.split_text(plain(text)):
        headings = [chunk.metadata[h] for h in ("h1", "h2", "h3") if h in chunk.metadata]
        body, examples = sections.setdefault(" > ".join(headings) or PurePosixPath(rel).stem, ([], []))
        body.append(chunk.page_content.strip())
        if chunk.metadata.get("Code", "").lower() in ("python", "py", "pycon"):
            examples.append(chunk.page_content.strip().removeprefix("```").split("\n", 1)[-1].removesuffix("```"))
    units = []
    for title, (body, examples) in sections.items():
        if unit := _doc_unit(rel, title, "\n\n".join(body), tuple(e.strip() for e in examples)):
            units.append(unit)
    return units


def rst_units(rel: str, text: str) -> list[Unit]:
    """Sections of a reStructuredText file (docutils; errors in the markup are tolerated, not fatal)."""
    doctree = publish_doctree(
        text,
        settings_overrides={
            "report_level": 5,
            "halt_level": 5,
            "warning_stream": False,
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "doctitle_xform": False,  # keep the top heading a section: titles are full paths
        },
    )
    # docutils files its complaints (an unknown role like click's :issue:, a stray backquote) as system_message
    # nodes inside the paragraph or list item they concern, and their text ("<string>:8: (INFO/1) No role
    # entry ...") would reach answers; the markup itself survives as text and plain() makes it Markdown.
    for message in list(doctree.findall(nodes.system_message)):
        message.parent.remove(message)
    units: list[Unit] = []

    def walk(node: nodes.Element, path: list[str]) -> None:
        own, examples = [], []
        for child in node.children:
            if isinstance(child, nodes.section):
                continue
            if isinstance(child, nodes.title):
                continue
            if isinstance(child, nodes.literal_block):
                code = child.astext()
                examples.append(code)
                own.append(f"```python\n{code}\n```")
            elif isinstance(child, nodes.Element):
                own.append(child.astext())
        title = " > ".join(path) or PurePosixPath(rel).stem
        # Sphinx roles and directives docutils does not know survive in its text as written: make them Markdown.
        if unit := _doc_unit(rel, title, plain("\n\n".join(own)), tuple(examples)):
            units.append(unit)
        for child in node.children:
            if isinstance(child, nodes.section):
                heading = child.next_node(nodes.title)
                walk(child, [*path, heading.astext() if heading else "section"])

    walk(doctree, [])
    return units


def text_units(rel: str, text: str, limit: int = 1500) -> list[Unit]:
    """Plain text: paragraphs grouped into chunks of at most ``limit`` characters."""
    chunks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", plain(text)):
        if current and len(current) + len(paragraph) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}".strip()
    chunks.append(current)
    stem = PurePosixPath(rel).stem
    return [u for i, c in enumerate(chunks) if (u := _doc_unit(rel, f"{stem} (part {i + 1})", c, ()))]


VERSION_HEADING = re.compile(r"(?:\[?v?(?:ersion\s+)?)(\d+(?:\.\d+)+[\w.-]*)\]?", re.I)


# What the model should know of a long history: the newest releases, and every deprecation and removal (they name
# what replaces an API). Older release notes would spend the training budget on versions nobody runs.
RECENT_RELEASES = 8


def _release_order(version: str) -> tuple[int, Any]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def changelog_units(rel: str, text: str) -> list[Unit]:
    """One unit per version and category (Keep a Changelog headings; plain "Version x.y" sections too), for the
    RECENT_RELEASES newest versions, plus the deprecations and removals of every version."""
    sections = markdown_units(rel, text) if PurePosixPath(rel).suffix.lower() in MARKDOWN else rst_units(rel, text)
    found = []
    for section in sections:
        parts = section.title.split(" > ")
        version = next((m[1] for p in parts if (m := VERSION_HEADING.search(p))), None)
        if version is not None:
            category = parts[-1] if not VERSION_HEADING.search(parts[-1]) else "Changes"
            found.append((version, category, section.text))
    recent = set(sorted({v for v, _, _ in found}, key=_release_order, reverse=True)[:RECENT_RELEASES])
    return [
        Unit(key=f"change:{version} {category}", kind="change", path=rel, title=f"{version} {category}", text=body)
        for version, category, body in found
        if version in recent or category.lower().startswith(("deprecat", "remov"))
    ]


def example_units(rel: str, source: str) -> list[Unit]:
    """Each test function as a usage example, titled by what its name says it checks."""
    tree = parse_python(source, filename=rel)
    units = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
            code = ast.get_source_segment(source, node)
            if not code:
                continue
            title = node.name.removeprefix("test_").replace("_", " ")
            units.append(
                Unit(
                    key=f"example:{rel}::{node.name}", kind="example", path=rel, title=title, text=textwrap.dedent(code)
                )
            )
    return units

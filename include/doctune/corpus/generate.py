"""Deterministic generators: chat-message pairs with provenance, several phrasings per kind of question."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from doctune.corpus.extract import Unit

PHRASINGS = {
    "signature": [
        "What is the signature of `{name}`?",
        "How is `{name}` declared?",
        "Show me the signature of `{name}` from {lib}.",
    ],
    "purpose": ["What does `{name}` do?", "Explain `{name}` in {lib}.", "What is `{name}` for?"],
    "which": [
        "Which {lib} function should I use to {task}?",
        "In {lib}, how do I {task}?",
        "What is the {lib} function to {task}?",
    ],
    "which_class": ["Which {lib} class is {task}?", "What is the name of the {lib} class for {task}?"],
    "params": ["What parameters does `{name}` take?", "Which arguments does `{name}` accept?"],
    "example": ["Show an example that uses `{name}`.", "Give me a short code example with `{name}`."],
    "deprecated": ["Is `{name}` deprecated? What should I use instead?", "How do I migrate away from `{name}`?"],
    "doc": [
        "What does the {lib} documentation say about {title}?",
        "Explain {title} in {lib}.",
        "Tell me about {title} in {lib}.",
    ],
    "doc_example": ["Show a {lib} code example for {title}.", "How would I write code for {title} with {lib}?"],
    "write_code": ["Write code with {lib} that shows: {title}.", "Using {lib}, write a test that checks: {title}."],
    "explain": [
        "Explain what this {lib} code does:\n```python\n{code}\n```",
        "What does the following code do with {lib}?\n```python\n{code}\n```",
    ],
    "migration": ["What replaces `{old}` in {lib}?", "How do I migrate code that uses `{old}` ({lib} {title})?"],
    "change": ["What changed in {lib} {title}?", "What does the {lib} changelog list under {title}?"],
}


def pick(unit_key: str, kind: str) -> str:
    """One phrasing per unit and question kind, chosen by hash: stable, and spread across the set."""
    choices = PHRASINGS[kind]
    return choices[int(hashlib.sha256(f"{unit_key}|{kind}".encode()).hexdigest(), 16) % len(choices)]


def task_phrase(summary: str) -> str:
    """Turn a docstring summary ("Open an envelope.") into a task ("open an envelope")."""
    task = summary.rstrip(".").strip()
    return task[:1].lower() + task[1:] if task else task


def first_paragraph(doc: str) -> str:
    return doc.strip().split("\n\n")[0].replace("\n", " ").strip()


def references(code: str, package: str) -> set[str]:
    """Fully qualified ``package.*`` names a text or code refers to, through imports and import aliases."""
    found = set(re.findall(rf"\b{re.escape(package)}(?:\.[A-Za-z_]\w*)+", code))
    for module, alias in re.findall(rf"^\s*import\s+({re.escape(package)}(?:\.\w+)*)\s+as\s+(\w+)", code, re.M):
        found.update(f"{module}.{rest}" for rest in re.findall(rf"(?<![\w.]){alias}\.([A-Za-z_][\w.]*)", code))
    imports = rf"^\s*from\s+({re.escape(package)}(?:\.\w+)*)\s+import\s+(?:\(([^)]*)\)|([\w ,]+))"
    for module, grouped, inline in re.findall(imports, code, re.M):
        names = grouped or inline
        found.update(f"{module}.{n.split(' as ')[0].strip()}" for n in names.split(",") if n.strip())
    return {name.rstrip(".") for name in found}


def explain(code: str, lib: str, symbols: dict[str, dict[str, Any]]) -> str | None:
    """A factual explanation of a code example: the library APIs it calls and what each does."""
    used = []
    for name in sorted(references(code, lib)):
        symbol = symbols.get(name)
        while symbol and symbol.get("kind") == "alias":
            symbol = symbols.get(symbol["alias_of"])
        if symbol and symbol.get("summary"):
            used.append(f"- `{name}`: {symbol['summary']}")
    if not used:
        return None
    return f"This code uses {lib}:\n" + "\n".join(used)


def _pair(
    unit: Unit, generator: str, question: str, answer: str, expect: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"unit": unit.key, "unit_digest": unit.digest(), "path": unit.path, "generator": generator}
    if expect:
        meta["expect"] = expect
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], "meta": meta}


_GOOGLE = re.compile(r"^\s*(?:Args|Arguments|Parameters|Keyword Args|Keyword Arguments):\s*$")
_NUMPY = re.compile(r"^\s*(?:Parameters|Other Parameters)\s*\n\s*-{3,}\s*$", re.M)


def param_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a docstring in Google, NumPy or reST style."""
    found = {
        m[1]: " ".join(m[2].split()) for m in re.finditer(r":param\s+(?:[\w\[\], ]+\s+)?(\*{0,2}\w+):\s*(.+)", doc)
    }
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if _GOOGLE.match(line):  # "name (type): description", continuation lines indented deeper
            indent = None
            for entry in lines[i + 1 :]:
                if not entry.strip():
                    continue
                depth = len(entry) - len(entry.lstrip())
                indent = depth if indent is None else indent
                if depth < indent:
                    break
                if depth == indent and (m := re.match(r"\s*(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)", entry)):
                    current = m[1]
                    found[current] = m[2]
                elif depth > indent and found:
                    found[current] += " " + entry.strip()
    if match := _NUMPY.search(doc):  # "name : type" then an indented description
        current = ""
        for entry in doc[match.end() :].splitlines()[1:]:
            if not entry.strip():
                continue
            if re.match(r"^\s*-{3,}\s*$", entry) or (entry.strip() and not entry.startswith(" ") and ":" not in entry):
                break
            if m := re.match(r"^\s{0,4}(\*{0,2}\w+)\s*:\s*.*$", entry):
                current = m[1]
                found[current] = ""
            elif current:
                found[current] = (found[current] + " " + entry.strip()).strip()
    return {k.lstrip("*"): v for k, v in found.items()}


def _params_answer(name: str, unit: Unit, code: str) -> str:
    described = param_docs(unit.text)
    lines = [f"- `{p}`: {described[p]}" if described.get(p) else f"- `{p}`" for p in unit.params]
    return f"`{name}` takes:\n" + "\n".join(lines) + f"\n\n{code}"


def _migration_pairs(unit: Unit, lib: str) -> list[dict[str, Any]]:
    """Changelog "Deprecated"/"Removed" bullets that name an API and its replacement -> migration questions."""
    pairs = []
    for bullet in re.findall(r"^\s*[-*]\s+(.+(?:\n\s{2,}.+)*)", unit.text, re.M):
        names = re.findall(r"`([\w.]+)(?:\([^`]*\))?`", bullet)
        if len(names) >= 2:
            question = pick(f"{unit.key}|{names[0]}", "migration").format(lib=lib, old=names[0], title=unit.title)
            pairs.append(_pair(unit, "migration", question, " ".join(bullet.split())))
    return pairs


def _api_pairs(unit: Unit, lib: str) -> list[dict[str, Any]]:
    name, summary = unit.title, first_paragraph(unit.text)
    code = f"```python\n# {name.rpartition('.')[0]}\n{unit.signature}\n```"
    fmt = {"name": name, "lib": lib}
    pairs = [
        _pair(unit, "signature", pick(unit.key, "signature").format(**fmt), f"{code}\n\n{summary}"),
        _pair(unit, "purpose", pick(unit.key, "purpose").format(**fmt), f"`{name}`: {unit.text.strip()}\n\n{code}"),
    ]
    if summary:
        kind = "which_class" if unit.signature.startswith("class ") else "which"
        pairs.append(
            _pair(
                unit,
                "which",
                pick(unit.key, kind).format(lib=lib, task=task_phrase(summary)),
                f"Use `{name}`:\n{code}\n\n{summary}",
                expect={"name": name.rsplit(".", 1)[-1], "params": list(unit.params)},
            )
        )
    if unit.params:
        pairs.append(
            _pair(
                unit,
                "params",
                pick(unit.key, "params").format(**fmt),
                _params_answer(name, unit, code),
            )
        )
    for example in unit.examples:
        pairs.append(_pair(unit, "example", pick(unit.key, "example").format(**fmt), f"```python\n{example}\n```"))
    if unit.deprecated:
        pairs.append(
            _pair(
                unit,
                "deprecated",
                pick(unit.key, "deprecated").format(**fmt),
                f"Yes, `{name}` is deprecated: {unit.deprecated}",
            )
        )
    return pairs


def generate_pairs(unit: Unit, lib: str, symbols: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Deterministic instruction-response pairs for one unit."""
    symbols = symbols or {}
    if unit.kind == "api":
        return _api_pairs(unit, lib)
    fmt = {"title": unit.title, "lib": lib}
    pairs = []
    if unit.kind == "doc":
        pairs.append(_pair(unit, "doc", pick(unit.key, "doc").format(**fmt), unit.text))
        for example in unit.examples:
            pairs.append(
                _pair(unit, "doc_example", pick(unit.key, "doc_example").format(**fmt), f"```python\n{example}\n```")
            )
    elif unit.kind == "example":
        pairs.append(
            _pair(
                unit, "write_code", pick(unit.key, "write_code").format(**fmt), f"```python\n{unit.text.strip()}\n```"
            )
        )
    elif unit.kind == "change":
        pairs.append(_pair(unit, "change", pick(unit.key, "change").format(**fmt), unit.text))
        if unit.title.endswith(("Deprecated", "Removed")):
            pairs += _migration_pairs(unit, lib)
    for code in unit.examples if unit.kind == "doc" else (unit.text,) if unit.kind == "example" else ():
        if answer := explain(code, lib, symbols):
            pairs.append(_pair(unit, "explain", pick(unit.key, "explain").format(code=code.strip(), lib=lib), answer))
    return pairs

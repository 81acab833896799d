"""Deterministic generators: chat pairs with provenance that teach each fact in several phrasings and contexts.

A model learns a fact well enough to answer new questions about it only when it has seen the fact many times, in
several phrasings, with its full name each time (Allen-Zhu & Li, Physics of LMs 3.1/3.3). So every public symbol's
facts are written in every phrasing below, and in several contexts: its declaration, a parameter list, its return
type, "which function does ...", a call, a module overview, a class overview, its reference entry. Answers are short
and carry the fully qualified name; the long docstring appears once, in the reference entry.

Symbols in the withheld-QA control (see ``corpus.versions``) get only documentation-shaped text (reference entry,
examples, doc sections): the evaluation then shows whether knowledge read as documentation can be answered.

The phrasings the evaluation asks in (``evalsuite.EVAL_PHRASINGS``) never appear here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from doctune.reader.extract import Unit
from doctune.reader.facts import Fact, Parameter, fact, is_enum

# Bump when generated pairs change for the same units: a rebuild then regenerates instead of copying the parent's.
GENERATOR_VERSION = 4

PHRASINGS = {
    "signature": [
        "What is the signature of `{name}`?",
        "How is `{name}` declared in {lib}?",
        "Show me the declaration of `{name}`.",
        "Print the Python signature of `{name}`.",
    ],
    "constructor": [
        "How do I construct a `{name}`?",
        "What does the constructor of `{name}` look like?",
        "Which arguments does `{name}(...)` take when I create one?",
    ],
    "params": [
        "What parameters does `{name}` take?",
        "Which arguments does `{name}` accept?",
        "List the arguments of `{name}`.",
    ],
    "returns": ["What does `{name}` return?", "What is the return type of `{name}`?"],
    "which": [
        "Which {lib} function should I use to {task}?",
        "In {lib}, how do I {task}?",
        "What is the {lib} function to {task}?",
        "I need to {task} in {lib}. What do I call?",
    ],
    "which_method": [
        "Which method of `{owner}` should I use to {task}?",
        "How do I {task} with a `{owner}`?",
        "What is the `{owner}` method to {task}?",
    ],
    "which_class": [
        "Which {lib} class is {task}?",
        "What is the name of the {lib} class for {task}?",
        "In {lib}, which class represents {task}?",
    ],
    "usage": [
        "Show how to call `{name}`.",
        "Give me a one-line example of calling `{name}`.",
        "How do I use `{name}` in code?",
    ],
    "purpose": ["What does `{name}` do?", "What is `{name}` for?"],
    "members": ["What are the members of `{name}`?", "Which values does the enum `{name}` have?"],
    "alias": ["Where can I import `{short}` from in {lib}?", "Is `{name}` available under another name?"],
    "reference": [
        "Show the documentation of `{name}`.",
        "Print the reference entry for `{name}`.",
        "Open the API docs of `{name}`.",
        "What does the reference documentation of `{name}` contain?",
    ],
    "example": ["Show an example that uses `{name}`.", "Give me a short code example with `{name}`."],
    "deprecated": ["Is `{name}` deprecated? What should I use instead?", "How do I migrate away from `{name}`?"],
    "module": ["What does the `{title}` module of {lib} provide?", "List the functions and classes in `{title}`."],
    "class_overview": ["What methods does `{title}` have?", "List the methods of `{title}`."],
    "module_reference": ["Show the API reference page of `{title}`.", "Print the API documentation of `{title}`."],
    "doc": [
        "What does the {lib} documentation say about {title}?",
        "Explain {title} in {lib}.",
        "Tell me about {title} in {lib}.",
    ],
    "doc_example": ["Show a {lib} code example for {title}.", "How would I write code for {title} with {lib}?"],
    "write_code": ["Write {lib} code that shows: {title}.", "Give a runnable {lib} example where {title}."],
    "explain": [
        "Explain what this {lib} code does:\n```python\n{code}\n```",
        "What does the following code do with {lib}?\n```python\n{code}\n```",
    ],
    "migration": ["What replaces `{old}` in {lib}?", "How do I migrate code that uses `{old}` ({lib} {title})?"],
    "change": ["What changed in {lib} {title}?", "What does the {lib} changelog list under {title}?"],
}
# Training time is counted in tokens (~170/s for SmolLM2-135M on 2 CPU cores), so the budget goes to short, dense
# facts: every phrasing of the API kinds above, but one phrasing (chosen by hash) for the long or derived contexts:
# doc sections, test snippets, code explanations, changelog entries, aliases; the long reference entry once for a
# symbol that also has questions, in every phrasing for a withheld-QA symbol (its first part: see
# _documentation_pairs), which has nothing else.
ONE_PHRASING = frozenset(
    {"doc", "doc_example", "write_code", "explain", "migration", "change", "alias", "module_reference"}
)


def pick(unit_key: str, kind: str) -> list[str]:
    """One phrasing for a unit and question kind, chosen by hash: stable, and spread across the set."""
    choices = PHRASINGS[kind]
    return [choices[int(hashlib.sha256(f"{unit_key}|{kind}".encode()).hexdigest(), 16) % len(choices)]]


def references(code: str, package: str) -> set[str]:
    """Fully qualified ``package.*`` names a text or code refers to, through imports and import aliases. A host
    or a path (``https://toolz.readthedocs.io/en``, ``docs/toolz.curried``) is not a name."""
    found = {
        m[0]
        for m in re.finditer(rf"(?<![\w./@-]){re.escape(package)}(?:\.[A-Za-z_]\w*)+", code)
        if not code.startswith("/", m.end())
    }
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


# -- answers: one per kind of fact, shared with the evaluation's held-out-phrasing rows ---------------------------


def _code(text: str) -> str:
    return f"```python\n{text}\n```"


def _parameter_line(parameter: Parameter, item: Fact) -> str:
    kind, name, default = parameter
    shown = {"vararg": f"*{name}", "kwarg": f"**{name}"}.get(str(kind), str(name))
    if name in item.annotations:
        shown += f": {item.annotations[str(name)]}"
    if default is not None:
        shown += f" = {default}"
    passing = {"posonly": " (positional-only)", "kwonly": " (keyword-only)"}.get(str(kind), "")
    described = item.param_docs.get(str(name), "")
    return f"- `{shown}`{passing}" + (f": {_first_sentence(described)}" if described else "")


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(?:\s|$)", text)
    return match[1] if match else text


def signature_answer(item: Fact) -> str:
    if item.kind == "class":  # annotated parameters in a call are not Python: shown inline, as Sphinx shows them
        return f"`{item.name}` is constructed as `{item.short}{item.signature}`."
    where = f", a method of `{item.owner}`" if item.kind == "method" else ""
    return f"`{item.name}`{where} is declared as:\n{_code(item.declaration + ': ...')}"


def params_answer(item: Fact) -> str:
    what = "The constructor of " if item.kind == "class" else ""
    lines = "\n".join(_parameter_line(p, item) for p in item.parameters)
    return f"{what}`{item.name}` takes {len(item.parameters)} parameter{'s' * (len(item.parameters) != 1)}:\n{lines}"


def returns_answer(item: Fact) -> str:
    said = f": {_first_sentence(item.returns_doc)}" if item.returns_doc else "."
    return f"`{item.name}` returns `{item.returns}`{said}"


def which_answer(item: Fact) -> str:
    return f"Use `{item.name}`:\n{_code(item.call)}"


def usage_answer(item: Fact, lib: str) -> str:
    if item.kind == "method":
        return f"Call it on a `{item.owner}`:\n{_code(f'result = {item.call}')}"
    return _code(f"import {lib}\n\nresult = {item.call}")


ANSWERS: dict[str, Callable[[Fact, str], str]] = {
    "signature": lambda item, lib: signature_answer(item),
    "params": lambda item, lib: params_answer(item),
    "returns": lambda item, lib: returns_answer(item),
    "which": lambda item, lib: which_answer(item),
    "usage": usage_answer,
}


# A reference entry longer than this is split at paragraph boundaries into parts (attrs.define's docstring alone is
# 13,000 characters); each part names the symbol, the first has its declaration. 1200 characters stay under the
# smollm2 preset's 512 tokens with the question (at 2500, 10 of attrs' 67 parts were cut there, their ends lost).
REFERENCE_PART_CHARS = 1200


def reference_entries(item: Fact) -> list[str]:
    """The symbol as its API reference page shows it: declaration, then the docstring, in parts if it is long."""
    head = f"`{item.name}`\n\n{_code(item.stub)}"
    parts, current = [], head
    for paragraph in re.split(r"\n\s*\n", item.doc) if item.doc else []:
        if len(current) + len(paragraph) > REFERENCE_PART_CHARS and current.strip() not in ("", head):
            parts.append(current)
            current = f"`{item.name}` (continued)"
        current = f"{current}\n\n{paragraph}"
    return [*parts, current]


def reference_entry(item: Fact) -> str:
    """The whole reference entry in one text (the docs-in-prompt row of the evaluation shows this)."""
    return f"`{item.name}`\n\n{_code(item.stub)}" + (f"\n\n{item.doc}" if item.doc else "")


def _fact_pairs(unit: Unit, item: Fact, lib: str, symbols: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every phrasing of every question kind about one symbol (the QA set)."""
    fmt = {"name": item.name, "short": item.short, "owner": item.owner, "lib": lib, "task": item.task}
    pairs: list[dict[str, Any]] = []

    def each(kind: str, generator: str, answer: str, expect: dict[str, Any] | None = None) -> None:
        questions = pick(unit.key, kind) if kind in ONE_PHRASING else PHRASINGS[kind]
        pairs.extend(_pair(unit, generator, q.format(**fmt), answer, expect) for q in questions)

    enum = is_enum(item)
    if item.kind != "class" or (item.parameters and not enum):
        each("constructor" if item.kind == "class" else "signature", "signature", signature_answer(item))
    if item.parameters and not enum:
        each("params", "params", params_answer(item))
    if item.returns:
        each("returns", "returns", returns_answer(item))
    if item.summary and item.task:
        which = {"class": "which_class", "method": "which_method"}.get(item.kind, "which")
        each(which, "which", which_answer(item), {"name": item.short, "params": [p[1] for p in item.parameters]})
    if not enum:
        each("usage", "usage", usage_answer(item, lib))
    if item.summary:
        each("purpose", "purpose", f"`{item.name}`: {item.summary}")
    if enum:
        members = sorted(n.rsplit(".", 1)[-1] for n, s in symbols.items() if n.startswith(f"{item.name}."))
        if members:
            each("members", "members", f"`{item.name}` has the members {', '.join(f'`{m}`' for m in members)}.")
    if item.aliases:
        also = ", ".join(f"`{a}`" for a in item.aliases)
        each("alias", "alias", f"`{item.short}` is defined as `{item.name}` and is also importable as {also}.")
    if item.deprecated:
        each("deprecated", "deprecated", f"Yes, `{item.name}` is deprecated: {item.deprecated}")
    return pairs


def _documentation_pairs(unit: Unit, item: Fact, *, withheld: bool) -> list[dict[str, Any]]:
    """What any symbol gets, QA set or not: its reference entry and its docstring examples."""
    fmt = {"name": item.name}
    one = pick(unit.key, "reference")
    entries = reference_entries(item)
    pairs = []
    for n, entry in enumerate(entries, 1):
        # A withheld-QA symbol's first part (declaration, summary) in every phrasing: it holds what the control asks.
        # Later parts are long prose, once each: repeating them cost attrs 12 % of its training tokens.
        questions = PHRASINGS["reference"] if withheld and n == 1 else one
        part = f" (part {n} of {len(entries)})" if len(entries) > 1 else ""
        pairs += [_pair(unit, "reference", q.format(**fmt) + part, entry) for q in questions]
    for example in item.examples:
        pairs += [_pair(unit, "example", q.format(**fmt), _code(example)) for q in PHRASINGS["example"]]
    return pairs


def api_pairs(
    unit: Unit, lib: str, symbols: dict[str, dict[str, Any]], *, withheld: bool = False
) -> list[dict[str, Any]]:
    item = fact(unit, symbols)
    if item is None:
        return []
    facts = [] if withheld else _fact_pairs(unit, item, lib, symbols)
    return _documentation_pairs(unit, item, withheld=withheld) + facts


def overview_unit(title: str, path: str, members: list[Fact], kind: str) -> Unit:
    """A module's or a class's public members with one-line summaries ("module", "class_overview"), or a module's
    reference page with each member's declaration ("module_reference"), as a unit of its own: its digest changes
    when any member's name, declaration or summary does."""
    if kind == "module_reference":
        entries = [
            f"`{m.name}`\n{_code(m.stub)}" + (f"\n{_first_sentence(m.summary)}" if m.summary else "") for m in members
        ]
        return Unit(key=f"{kind}:{title}", kind=kind, path=path, title=title, text="\n\n".join(entries))
    lines = [f"- `{m.name}`" + (f": {_first_sentence(m.summary)}" if m.summary else "") for m in members]
    return Unit(key=f"{kind}:{title}", kind=kind, path=path, title=title, text="\n".join(lines))


def _migration_pairs(unit: Unit, lib: str) -> list[dict[str, Any]]:
    """Changelog "Deprecated"/"Removed" bullets that name an API and its replacement -> migration questions."""
    pairs = []
    for bullet in re.findall(r"^\s*[-*]\s+(.+(?:\n\s{2,}.+)*)", unit.text, re.M):
        names = re.findall(r"`([\w.]+)(?:\([^`]*\))?`", bullet)
        if len(names) >= 2:
            for question in pick(f"{unit.key}|{names[0]}", "migration"):
                pairs.append(
                    _pair(
                        unit,
                        "migration",
                        question.format(lib=lib, old=names[0], title=unit.title),
                        " ".join(bullet.split()),
                    )
                )
    return pairs


def snippet_pair(unit: Unit, task: str, code: str, lib: str, verified: bool | None) -> dict[str, Any]:
    """A usage example made from one of the library's tests (``corpus.snippets``): the task in plain words, and
    a runnable script that was run in the sandbox where the library could run (``verified``)."""
    question = pick(unit.key, "write_code")[0].format(lib=lib, title=task)
    pair = _pair(unit, "write_code", question, _code(code))
    pair["meta"]["verified"] = verified
    return pair


def task_pair(unit: Unit, prompt: str, reference: str) -> dict[str, Any]:
    """A call a training test or doc example checks, as a task: continue the setup with the call that does what
    is described (``evalsuite.TRAIN_WORDING``); the answer is the library's own code, which passed in the
    sandbox."""
    pair = _pair(unit, "task", prompt, _code(reference))
    pair["meta"]["verified"] = True
    return pair


def generate_pairs(
    unit: Unit, lib: str, symbols: dict[str, dict[str, Any]] | None = None, *, withheld: bool = False
) -> list[dict[str, Any]]:
    """Deterministic instruction-response pairs for one unit (``withheld``: documentation only, see above). Tests
    become pairs through ``snippet_pair``, once they are rewritten and run."""
    symbols = symbols or {}
    if unit.kind == "api":
        return api_pairs(unit, lib, symbols, withheld=withheld)
    fmt = {"title": unit.title, "lib": lib}
    pairs = []
    if unit.kind in ("module", "class_overview"):
        pairs += [
            _pair(unit, unit.kind, q.format(**fmt), f"`{unit.title}`:\n{unit.text}") for q in PHRASINGS[unit.kind]
        ]
    elif unit.kind == "module_reference":
        pairs += [_pair(unit, unit.kind, q.format(**fmt), unit.text) for q in pick(unit.key, unit.kind)]
    elif unit.kind == "doc":
        pairs += [_pair(unit, "doc", q.format(**fmt), unit.text) for q in pick(unit.key, "doc")]
        for example in unit.examples:
            for question in pick(unit.key, "doc_example"):
                pairs.append(_pair(unit, "doc_example", question.format(**fmt), _code(example)))
    elif unit.kind == "change":
        pairs += [_pair(unit, "change", q.format(**fmt), unit.text) for q in pick(unit.key, "change")]
        if unit.title.endswith(("Deprecated", "Removed")):
            pairs += _migration_pairs(unit, lib)
    for code in unit.examples if unit.kind == "doc" else ():
        if answer := explain(code, lib, symbols):
            question = pick(unit.key, "explain")[0]
            pairs.append(_pair(unit, "explain", question.format(code=code.strip(), lib=lib), answer))
    return pairs

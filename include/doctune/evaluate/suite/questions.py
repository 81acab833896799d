"""API questions about every public symbol, asked in a phrasing family no training pair uses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from doctune.evaluate.suite.items import ApiQuestion
from doctune.evaluate.suite.symbols import _plain, _word
from doctune.reader.extract import Unit
from doctune.reader.facts import fact, is_enum

# The held-out phrasing family: evaluation asks about trained facts only in these words, which no training pair uses
# (``generate.PHRASINGS`` is the training family; a test checks the built files). Two per kind, chosen per symbol by
# hash, so that no single template's quirks decide a score.
EVAL_PHRASINGS = {
    "signature": [
        "Give the full parameter list of {subject} as a Python `def` line.",
        "Reply with the complete header of {subject}: `def`, its name, every parameter and default.",
    ],
    "constructor": [
        "Write the call that builds {subject}, listing every constructor parameter with its default.",
        "Spell out the constructor of {subject} as `Name(parameters)`, defaults included.",
    ],
    "params": [
        "Name, in order, every argument that {subject} expects.",
        "For {subject}, name the arguments from first to last.",
    ],
    "returns": [
        "What kind of value comes back from {subject}? Reply with the type annotation.",
        "For {subject}, state the annotated type of the result.",
    ],
    "which": [
        "I want to {task}. Name the {lib} function that does it.",
        "Name the {lib} function whose job is to {task}.",
    ],
    "which_method": [
        "Name the method of `{owner}` that lets me {task}.",
        "On a `{owner}`, what method would {task}? Give its name.",
    ],
    "which_class": [
        "Name the {lib} class that is {task}.",
        "What type in {lib} stands for {task}? Give the class name.",
    ],
    "usage": [
        "Write one line of Python that calls {subject} with its required arguments.",
        "Give a single statement invoking {subject}, passing what it requires.",
    ],
    "replacement": [
        "Code that calls {subject} needs updating. Name the {lib} function to call instead.",
        "{subject} is being phased out: which {lib} name takes its place?",
    ],
}


def eval_phrasing(symbol: str, family: str) -> str:
    """The held-out phrasing of a question family for one symbol, chosen by hash."""
    choices = EVAL_PHRASINGS[family]
    return choices[int(hashlib.sha256(f"{symbol}|{family}|eval".encode()).hexdigest(), 16) % len(choices)]


def api_questions(
    units: list[Unit], import_name: str, symbols: Mapping[str, dict[str, Any]], withheld: Iterable[str] = ()
) -> list[ApiQuestion]:
    """Questions about every public symbol, in the held-out phrasing family.

    - ``signature``: the exact parameter list (a class's: its constructor's);
    - ``params``: the parameter names, in order;
    - ``returns`` (when annotated, other than None): the return annotation;
    - ``which`` (when the summary does not name it): which function, method or class does what the summary says;
    - ``usage``: one call with arguments that bind to the signature.
    ``split`` says whether the symbol's facts trained as questions ("trained") or only as documentation
    ("withheld", the control: units whose keys are in ``withheld``).
    """
    held = set(withheld)
    questions = []
    for unit in units:
        item = fact(unit, dict(symbols)) if unit.kind == "api" else None
        if item is None:
            continue
        split = "withheld" if unit.key in held else "trained"
        if item.kind == "method":
            subject = f"the method `{item.short}` of `{item.owner}`"
            family = "which_method"
        else:
            subject = f"`{item.name}`"
            family = "which_class" if item.kind == "class" else "which"
        fmt = {"subject": subject, "owner": item.owner, "lib": import_name, "task": item.task}
        enum = is_enum(item)
        asked: list[tuple[str, str, dict[str, Any]]] = []  # (question kind, phrasing family, expectation)
        if item.parameters and not enum:
            expect = {"name": item.short, "parameters": item.parameters}
            asked.append(("signature", "constructor" if item.kind == "class" else "signature", expect))
            asked.append(("params", "params", {"params": [p[1] for p in item.parameters]}))
        if item.returns:
            asked.append(("returns", "returns", {"returns": item.returns}))
        if item.summary and item.task and not _word(item.short).search(_plain(item.summary)):
            asked.append(("which", family, {"name": item.short}))
        if not enum:
            asked.append(("usage", "usage", {"name": item.short, "parameters": item.parameters}))
        for kind, phrasing, expect in asked:
            prompt = eval_phrasing(item.name, phrasing).format(**fmt)
            questions.append(ApiQuestion(f"{kind}:{item.name}", item.name, kind, prompt, expect, split))
    return questions

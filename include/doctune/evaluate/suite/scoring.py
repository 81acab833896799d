"""Scoring an answer to an API question against the symbol table, and telling an outdated answer."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import replace
from typing import Any

from doctune.evaluate.suite.answers import extract_code
from doctune.evaluate.suite.items import ApiQuestion
from doctune.evaluate.suite.symbols import _word, parse_or_none
from doctune.reader.facts import parameter_rows


def _balanced(text: str, start: int) -> str | None:
    """The text between the parenthesis at ``start`` and its match (brackets and quotes respected)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def _annotation_pattern(annotation: str) -> re.Pattern[str]:
    """The annotation as whole tokens with any spacing between them (``tuple[int,int]`` matches)."""
    tokens = re.findall(r"\w+|\S", annotation)
    return re.compile(r"(?<!\w)" + r"\s*".join(map(re.escape, tokens)) + r"(?!\w)")


def _signature_matches(answer: str, name: str, expected: list[Any]) -> bool:
    for match in re.finditer(rf"(?<!\w){re.escape(name)}\s*\(", answer):
        inner = _balanced(answer, match.end() - 1)
        stub = parse_or_none(f"def _({inner}):\n    pass") if inner is not None else None
        function = stub.body[0] if stub else None
        if isinstance(function, ast.FunctionDef) and parameter_rows(function.args, method=True) == expected:
            return True
    return False


def _binds(call: ast.Call, parameters: list[Any]) -> bool:
    """Whether a call's arguments bind to a parameter list the way Python would bind them (every required
    parameter given once, no unknown keyword, not too many positional arguments). ``*args``/``**kwargs`` at the
    call site cannot be judged and count as binding."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return True
    positional = [p for p in parameters if p[0] in ("posonly", "pos")]
    if len(call.args) > len(positional) and not any(p[0] == "vararg" for p in parameters):
        return False
    given = {p[1] for p in positional[: len(call.args)]}
    by_name = {p[1]: p for p in parameters if p[0] in ("pos", "kwonly")}
    for keyword in call.keywords:
        if keyword.arg in given or (keyword.arg not in by_name and not any(p[0] == "kwarg" for p in parameters)):
            return False
        given.add(keyword.arg)
    required = {p[1] for p in parameters if p[2] is None and p[0] in ("posonly", "pos", "kwonly")}
    return required <= given


def _calls_binding(answer: str, name: str, parameters: list[Any]) -> bool:
    """Some call of ``name`` (bare, dotted or as a method) in the answer's code binds to ``parameters``."""
    pieces = [extract_code(answer)] + [m[0] for m in re.finditer(rf"(?<![\w]){re.escape(name)}\s*\([^\n]*", answer)]
    for piece in pieces:
        module = parse_or_none(textwrap.dedent(piece))
        if module is None:  # a call inside prose: cut at its closing parenthesis and read just the call
            start = piece.find("(")
            inner = _balanced(piece, start) if start >= 0 else None
            module = parse_or_none(f"{name}({inner})") if inner is not None else None
        for node in ast.walk(module) if module is not None else ():
            callee = node.func if isinstance(node, ast.Call) else None
            named = (isinstance(callee, ast.Name) and callee.id == name) or (
                isinstance(callee, ast.Attribute) and callee.attr == name
            )
            if named and isinstance(node, ast.Call) and _binds(node, parameters):
                return True
    return False


def score_api(question: ApiQuestion, answer: str) -> float:
    """How well ``answer`` answers ``question``, from 0 to 1.

    - ``signature``: 1.0 iff some ``<name>(...)`` in the answer (a ``def`` line or a call-like mention, e.g.
      ``lk.nibble(...)``) has exactly the expected parameter list: the same names in the same order, each passed
      the same way (positional-only, positional-or-keyword, ``*args``, keyword-only, ``**kwargs``) and with the
      same default, compared as normalised source so ``x: bool=False`` and ``x = False`` agree. Annotations are
      ignored (``Optional[int]``/``int | None``/qualified names are equally right; ``returns`` asks about
      types); a leading ``self`` is ignored for methods.
    - ``params``: the fraction of the parameter names that appear in the answer as whole identifiers.
    - ``returns``: 1.0 iff the return annotation appears as whole tokens, spacing aside (``Envelope`` also
      inside ``lk.Envelope``).
    - ``which``: 1.0 iff the symbol's short name appears as a whole identifier (``nibble``, ``lk.nibble(...)``).
    - ``usage``: 1.0 iff some call of the symbol (``lk.nibble(pot, 5)``, ``shelf.pluck("x")``) passes arguments
      that bind to its signature.
    - ``gone`` (a removed symbol's diff probe): 1.0 unless the answer offers the removed name.
    """
    expect = question.expect
    if question.kind == "signature":
        return float(_signature_matches(answer, expect["name"], expect["parameters"]))
    if question.kind == "params":
        params = expect["params"]
        return sum(bool(_word(p).search(answer)) for p in params) / len(params)
    if question.kind == "returns":
        return float(bool(_annotation_pattern(expect["returns"]).search(answer)))
    if question.kind == "which":
        return float(bool(_word(expect["name"]).search(answer)))
    if question.kind == "usage":
        return float(_calls_binding(answer, expect["name"], expect["parameters"]))
    if question.kind == "gone":
        return float(not _word(expect["name"]).search(answer))
    raise ValueError(f"unknown API question kind {question.kind!r}")


def is_stale(question: ApiQuestion, answer: str) -> bool:
    """Whether ``answer`` offers the API as it was before the change ``question`` probes: it meets the parent
    version's expectation and not the current one (an old parameter list, a removed or renamed name)."""
    if question.stale is None:
        return False
    if question.kind == "gone":
        return score_api(question, answer) < 1
    outdated = replace(question, expect=question.stale)
    return score_api(outdated, answer) >= 1 - 1e-9 and score_api(question, answer) < 1 - 1e-9

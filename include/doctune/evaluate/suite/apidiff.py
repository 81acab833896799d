"""What changed in the public API since the parent dataset version, and the probes that check an adapter knows it.

The product's promise is that the model follows the library as it changes, so each version's evaluation asks about
exactly what changed (CodeUpdateArena, arXiv 2407.06249, measures this on synthetic API updates, by hand). The diff
compares two versions' symbol tables (``symbols.json``): added, removed, renamed (a removed and an added symbol of
the same kind, parameters and summary), changed (a new declaration) and newly deprecated symbols.

Probes are evaluation questions in the held-out phrasing family, labelled with their change. Where an outdated answer
can be recognised, a probe carries the parent version's expectation (``stale``): an answer that meets the old
expectation and not the new one offers the old API. The facts themselves train like every other symbol's.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from doctune.evaluate.suite.items import ApiQuestion
from doctune.evaluate.suite.questions import eval_phrasing

CALLABLE = ("function", "class", "method")


@dataclass(frozen=True)
class ApiDiff:
    """Qualified names by change; ``renamed`` and ``deprecated`` pair a name with the one to use now ("" if the
    deprecation names none)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deprecated: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.renamed or self.changed or self.deprecated)

    def touched(self) -> set[str]:
        """Every name the diff is about, old and new: the rest are the unchanged symbols."""
        pairs = {n for pair in self.renamed + self.deprecated for n in pair if n}
        return {*self.added, *self.removed, *self.changed, *pairs}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApiDiff:
        return cls(
            added=list(data.get("added", [])),
            removed=list(data.get("removed", [])),
            renamed=[(old, new) for old, new in data.get("renamed", [])],
            changed=list(data.get("changed", [])),
            deprecated=[(name, instead) for name, instead in data.get("deprecated", [])],
        )


def _declaration(entry: dict[str, Any]) -> str:
    """The stub as the parser reads it: spacing, quoting and comments do not make a change."""
    try:
        return ast.dump(ast.parse(entry.get("signature", "")))
    except SyntaxError:
        return entry.get("signature", "")


def _replacement(note: str, name: str, after: dict[str, dict[str, Any]]) -> str:
    """The public symbol a deprecation note points to (``Use `digest_for_month` instead``), or ""."""
    owner = name.rsplit(".", 1)[0]
    package = name.split(".")[0]
    for word in re.findall(r"[A-Za-z_][\w.]*", note):
        word = word.rstrip(".")
        for candidate in (word, f"{owner}.{word}", f"{package}.{word}"):
            entry = after.get(candidate)
            if candidate != name and entry and entry.get("kind") in (*CALLABLE, "alias"):
                return entry.get("alias_of", candidate) if entry.get("kind") == "alias" else candidate
    return ""


def api_diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> ApiDiff:
    """The public API change from the ``before`` symbol table to ``after`` (functions, classes, methods)."""
    old = {n: e for n, e in before.items() if e.get("kind") in CALLABLE}
    new = {n: e for n, e in after.items() if e.get("kind") in CALLABLE}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    renamed = []
    for name in list(removed):

        def same(other: str, gone: str = name) -> bool:
            a, b = old[gone], new[other]
            keys = ("kind", "params", "summary")
            return all(a.get(k) == b.get(k) for k in keys) and bool(a.get("summary"))

        twin = next((n for n in added if same(n)), None)
        if twin is not None:
            renamed.append((name, twin))
            removed.remove(name)
            added.remove(twin)
    both = sorted(set(old) & set(new))
    changed = [
        n for n in both if old[n].get("kind") == new[n].get("kind") and _declaration(old[n]) != _declaration(new[n])
    ]
    deprecated = [
        (n, _replacement(new[n]["deprecated"], n, after))
        for n in both
        if new[n].get("deprecated") and not old[n].get("deprecated")
    ]
    return ApiDiff(added, removed, renamed, changed, deprecated)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _judged(question: ApiQuestion) -> Any:
    """What of a question's expectation its score depends on: a call binds whatever a default's value is."""
    if question.kind != "usage":
        return question.expect
    return [[kind, name, default is None] for kind, name, default in question.expect["parameters"]]


def diff_probes(
    diff: ApiDiff, questions: list[ApiQuestion], parent_questions: list[ApiQuestion], import_name: str
) -> list[ApiQuestion]:
    """The questions that show whether a model knows this change, from this version's questions and the parent's:

    - added: every question about the symbol;
    - changed: each question whose expected answer changed, with the parent's expectation as ``stale``;
    - renamed: the new name's questions, and the parent's "which" question now expecting the new name (the old
      name is stale);
    - deprecated: which symbol replaces it, when the deprecation names one;
    - removed: the parent's "which" question, kind ``gone``: right unless the answer offers the removed name.
    """
    then = {q.id: q for q in parent_questions}
    probes: list[ApiQuestion] = []

    def probe(question: ApiQuestion, change: str, **changes: Any) -> None:
        probes.append(replace(question, id=f"diff:{change}:{question.id}", change=change, **changes))

    new_names = {new for _, new in diff.renamed}
    for question in questions:
        if question.symbol in diff.added or question.symbol in new_names:
            probe(question, "renamed" if question.symbol in new_names else "added")
        elif question.symbol in diff.changed:
            before = then.get(question.id)
            if before is None or _judged(before) != _judged(question):
                probe(question, "changed", stale=before.expect if before else None)
    for old, new in diff.renamed:
        which = then.get(f"which:{old}")
        if which is not None:
            probe(which, "renamed", symbol=new, expect={"name": _short(new)}, stale={"name": _short(old)})
    for name, instead in diff.deprecated:
        if instead:
            subject = f"`{name}`"
            prompt = eval_phrasing(name, "replacement").format(subject=subject, lib=import_name)
            expect = {"name": _short(instead)}
            probes.append(ApiQuestion(f"diff:deprecated:{name}", name, "which", prompt, expect, change="deprecated"))
    for name in diff.removed:
        which = then.get(f"which:{name}")
        if which is not None:
            probe(which, "removed", kind="gone", expect={"name": _short(name)}, stale={"name": _short(name)})
    return probes

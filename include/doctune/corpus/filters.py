"""Quality filters. Each rejected pair is kept, with the filter's name and a reason, for the quality report.

Order matters only for which reason a pair is blamed on: cheap structural checks first, then the
hallucination check against the symbol table, then duplicates, then decontamination.

Decontamination keeps what the evaluation holds out out of training: the held-out tests' code (execution tasks
are mined from it; a task whose very solving call is in a training answer is dropped from the suite instead, see
``corpus.versions``) and the evaluation's questions. It does not compare answers: a fact's answer is meant to be in
training and in scoring alike (knowledge is trained, questions are held out).
"""

from __future__ import annotations

import ast
import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from doctune.corpus.generate import references

CODE_BLOCK = re.compile(r"```(?:python|py|pycon)\n(.*?)```", re.S)
MIN_QUESTION, MAX_QUESTION = 8, 2000
MIN_ANSWER, MAX_ANSWER = 2, 6000
NGRAM = 13  # decontamination: any shared 13-word sequence with held-out test code (as GPT-3's paper did)
SHINGLE, PERMUTATIONS, BANDS, NEAR_DUP = 5, 32, 8, 0.85
_PRIME = (1 << 31) - 1


def _seeds(tag: str) -> Any:
    import numpy as np

    return np.array(
        [
            int.from_bytes(hashlib.sha256(f"{tag}{i}".encode()).digest()[:4], "big") % _PRIME | 1
            for i in range(PERMUTATIONS)
        ],
        dtype=np.uint64,
    )


_A, _B = _seeds("a"), _seeds("b")


@dataclass
class Verdicts:
    train: list[dict[str, Any]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, row: dict[str, Any], split: str, name: str, reason: str) -> None:
        self.rejected.append(
            {**row, "meta": {**row["meta"], "split": split, "rejected": {"filter": name, "reason": reason}}}
        )


def _answer(row: dict[str, Any]) -> str:
    return str(row["messages"][-1]["content"])


def _question(row: dict[str, Any]) -> str:
    return str(row["messages"][0]["content"])


def length_problem(row: dict[str, Any]) -> str | None:
    q, a = len(_question(row)), len(_answer(row))
    if not MIN_QUESTION <= q <= MAX_QUESTION:
        return f"question has {q} characters (allowed {MIN_QUESTION}-{MAX_QUESTION})"
    if not MIN_ANSWER <= a <= MAX_ANSWER:
        return f"answer has {a} characters (allowed {MIN_ANSWER}-{MAX_ANSWER})"
    return None


WORD = re.compile(r"^(?=.*[^\W\d_])[\w.']+$")  # letters (any script), digits, dots: words and dotted names


def junk_problem(row: dict[str, Any]) -> str | None:
    """Text no reader could use: prose (code blocks aside) whose tokens are mostly not words. Markdown and
    punctuation tokens are neutral; a code-only answer is judged by the code filter instead."""
    for role, text in (("question", _question(row)), ("answer", _answer(row))):
        # Inline code splits into its names: `cap_rule(limit, *, verdict=Verdict.VETO)` is words, "ickf?cs" is not.
        pieces = re.split(r"[\s()\[\]{}=,*:;\"<>+|`]+", CODE_BLOCK.sub(" ", text))
        tokens = [t for t in (p.strip(string.punctuation) for p in pieces) if t]
        if not tokens:
            if role == "answer" and "```" in text:
                continue
            return f"{role} has no words"
        words = sum(bool(WORD.match(t)) for t in tokens)
        if words < 0.7 * len(tokens):
            return f"{role} is not text: only {words} of {len(tokens)} tokens are words"
    return None


def code_problem(row: dict[str, Any]) -> str | None:
    """Python in an answer must parse (doctest blocks are checked as the code after their prompts)."""
    for block in CODE_BLOCK.findall(_answer(row)):
        lines = block.splitlines()
        if any(line.lstrip().startswith(">>>") for line in lines):
            lines = [ln.strip()[4:] for ln in lines if ln.strip().startswith((">>> ", "... ", ">>>"))]
        try:
            ast.parse("\n".join(lines))
        except SyntaxError as exc:
            return f"answer code does not parse: line {exc.lineno}: {exc.msg}"
        except (ValueError, RecursionError, MemoryError) as exc:  # a null byte (before Python 3.12), too deep
            return f"answer code does not parse: {type(exc).__name__}"
    return None


def exists(name: str, symbols: dict[str, dict[str, Any]], known: set[str], depth: int = 0) -> bool:
    """A referenced name is real if it is a symbol or a module/package prefix of one (``known``), or if it
    resolves through a re-export (``pkg.nibble`` -> ``pkg.envelopes.nibble``)."""
    if name in known:
        return True
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        symbol = symbols.get(".".join(parts[:i]))
        if symbol and symbol.get("kind") == "alias" and depth < 5:
            return exists(".".join([symbol["alias_of"], *parts[i:]]), symbols, known, depth + 1)
    return False


def known_names(symbols: dict[str, dict[str, Any]]) -> set[str]:
    return {".".join(name.split(".")[:i]) for name in symbols for i in range(1, name.count(".") + 2)}


def api_problem(row: dict[str, Any], package: str, symbols: dict[str, dict[str, Any]], known: set[str]) -> str | None:
    """The hallucination filter: every ``package.x.y`` the pair mentions must exist at this commit."""
    text = f"{_question(row)}\n{_answer(row)}"
    unknown = sorted(n for n in references(text, package) if not exists(n, symbols, known))
    return f"mentions APIs that do not exist: {', '.join(unknown[:5])}" if unknown else None


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _minhash(text: str) -> tuple[int, ...]:
    import numpy as np

    words = _normal(text).split()
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(max(len(words) - SHINGLE + 1, 1))}
    hashes = np.array(
        [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "big") for s in shingles], dtype=np.uint64
    )
    # a < 2^31 and h < 2^32, so a*h + b stays below 2^64: exact in uint64, and vectorised over all shingles.
    return tuple(int(v) for v in ((_A[:, None] * hashes[None, :] + _B[:, None]) % _PRIME).min(axis=1))


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def apply(
    train: Iterable[dict[str, Any]],
    held_out: Iterable[dict[str, Any]],
    package: str,
    symbols: dict[str, dict[str, Any]],
    held_out_code: Iterable[str] = (),
) -> Verdicts:
    out = Verdicts()
    known = known_names(symbols)
    seen: dict[str, str] = {}
    buckets: dict[tuple[int, tuple[int, ...]], list[tuple[tuple[int, ...], str]]] = {}
    rows = [("eval", r) for r in held_out] + [("train", r) for r in train]  # eval first: it wins duplicates
    accepted: list[tuple[str, dict[str, Any]]] = []
    for split, row in rows:
        unit = row["meta"]["unit"]
        for name, problem in (
            ("length", length_problem(row)),
            ("junk", junk_problem(row)),
            ("code", code_problem(row)),
            ("api", api_problem(row, package, symbols, known)),
        ):
            if problem:
                out.reject(row, split, name, problem)
                break
        else:
            key = hashlib.sha256(_normal(_question(row) + "\0" + _answer(row)).encode()).hexdigest()
            if key in seen:
                out.reject(row, split, "duplicate", f"exact duplicate of a pair from {seen[key]}")
                continue
            signature = _minhash(_question(row) + " " + _answer(row))
            rows_per_band = PERMUTATIONS // BANDS
            near = None
            for band in range(BANDS):
                for other, other_unit in buckets.get(
                    (band, signature[band * rows_per_band : (band + 1) * rows_per_band]), []
                ):
                    # Pairs of one unit are meant to overlap (same facts, different questions): compare across units.
                    same = sum(x == y for x, y in zip(signature, other, strict=True)) / PERMUTATIONS
                    if other_unit != unit and same >= NEAR_DUP:
                        near = other_unit
                        break
                if near:
                    break
            if near:
                out.reject(row, split, "near-duplicate", f"near-duplicate (MinHash >= {NEAR_DUP}) of {near}")
                continue
            seen[key] = unit
            for band in range(BANDS):
                buckets.setdefault((band, signature[band * rows_per_band : (band + 1) * rows_per_band]), []).append(
                    (signature, unit)
                )
            accepted.append((split, row))
    held_out_code = list(held_out_code)
    protected = set().union(*(_ngrams(code) for code in held_out_code))
    eval_questions = {_normal(_question(r)) for s, r in accepted if s == "eval"}
    for split, row in accepted:
        text = f"{_question(row)}\n{_answer(row)}"
        if split == "eval":
            out.eval.append(row)
        elif _normal(_question(row)) in eval_questions:
            out.reject(row, split, "decontamination", "asks an evaluation question word for word")
        elif protected and _ngrams(text) & protected:
            out.reject(row, split, "decontamination", f"shares a {NGRAM}-word sequence with a held-out test")
        else:
            out.train.append(row)
    return out

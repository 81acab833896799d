"""An LLM-backed generator through LangChain: any OpenAI-compatible endpoint, structured output.

Off by default (``llm.enabled`` in the library config). Requests run with bounded concurrency and retries;
answers are cached by a hash of (model, prompt), so an unchanged unit never costs a second request; a token
budget stops new requests once spent. Whatever the model says still goes through every quality filter: a
weak model's junk is rejected there, with reasons, instead of reaching training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, create_model

from doctune.config import LLMConfig
from doctune.reader.extract import Unit

log = logging.getLogger(__name__)

PROMPT = (
    "You write training data about the Python library `{lib}`. From the documentation excerpt below, write "
    "{n} question-answer pairs a developer using {lib} would ask. Answers must only use facts from the "
    "excerpt and must name real {lib} functions exactly.\n\nExcerpt ({title}):\n{text}"
)


def schema(config: LLMConfig) -> type[BaseModel]:
    """The structured output, with length limits in the JSON schema so the server's guided decoding ends every
    string (a weak model otherwise rambles until the token limit and nothing parses)."""
    pair = create_model(
        "QAPair",
        question=(str, Field(max_length=config.max_question_chars, description="A developer's question.")),
        answer=(str, Field(max_length=config.max_answer_chars, description="The answer, from the excerpt only.")),
    )
    pairs = (list[pair], Field(min_length=1, max_length=config.pairs_per_unit))  # type: ignore[valid-type]
    return create_model("QAPairs", pairs=pairs)


def _prompt(unit: Unit, lib: str, config: LLMConfig) -> str:
    return PROMPT.format(lib=lib, n=config.pairs_per_unit, title=unit.title, text=unit.text[: config.max_chars])


def _tokens(response: Any) -> int:
    """Tokens a response cost, from a LangChain message or an OpenAI completion (failed ones cost too)."""
    usage = getattr(response, "usage_metadata", None) or {}
    if usage:
        return int(usage.get("total_tokens", 0))
    return int(getattr(getattr(response, "usage", None), "total_tokens", 0) or 0)


def _row(unit: Unit, question: str, answer: str, config: LLMConfig, commit: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "meta": {
            "unit": unit.key,
            "unit_digest": unit.digest(),
            "path": unit.path,
            "generator": "llm",
            "model": config.model,
            "commit": commit,
        },
    }


def llm_rows(
    units: list[Unit], lib: str, config: LLMConfig, cache_dir: Path, commit: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """Pairs for ``units`` from the configured model; outputs that did not parse, as rejected rows with the
    reason; and counts (requests, cached, failed, over budget, tokens). Both outcomes are cached: at
    temperature 0 the same prompt fails the same way, so it is not paid for twice."""
    from langchain_openai import ChatOpenAI

    cache_dir.mkdir(parents=True, exist_ok=True)
    stats = {"requests": 0, "cached": 0, "failed": 0, "over_budget": 0, "tokens": 0}
    answers: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Unit, str, Path]] = []
    for unit in units:
        prompt = _prompt(unit, lib, config)
        key = hashlib.sha256(f"{config.model}\0{prompt}".encode()).hexdigest()
        cached = cache_dir / f"{key}.json"
        if cached.exists():
            answers[unit.key] = json.loads(cached.read_text())
            stats["cached"] += 1
        else:
            todo.append((unit, prompt, cached))

    model = ChatOpenAI(
        base_url=config.base_url,
        model=config.model,
        temperature=0,
        max_retries=config.max_retries,
        timeout=config.timeout,
        max_completion_tokens=config.max_tokens,
        api_key=SecretStr(os.environ.get(config.api_key_env) or "none"),
    )
    structured = model.with_structured_output(schema(config), method="json_schema", include_raw=True)
    batch = max(config.max_concurrency, 1)
    for start in range(0, len(todo), batch):
        if stats["tokens"] >= config.token_budget:
            stats["over_budget"] += len(todo) - start
            log.warning(
                "LLM token budget (%d) spent: %d units left without LLM pairs", config.token_budget, len(todo) - start
            )
            break
        chunk = todo[start : start + batch]
        results = structured.batch([p for _, p, _ in chunk], config={"max_concurrency": batch}, return_exceptions=True)
        for (unit, _, cached), result in zip(chunk, results, strict=True):
            stats["requests"] += 1
            if isinstance(result, BaseException) or result.get("parsed") is None:
                error = result if isinstance(result, BaseException) else result.get("parsing_error")
                stats["tokens"] += _tokens(getattr(error, "completion", None)) or (
                    0 if isinstance(result, BaseException) else _tokens(result.get("raw"))
                )
                outcome: dict[str, Any] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
            else:
                stats["tokens"] += _tokens(result["raw"])
                outcome = {"pairs": [p.model_dump() for p in result["parsed"].pairs]}
            cached.write_text(json.dumps(outcome))
            answers[unit.key] = outcome
    rows, failures = [], []
    for unit in units:
        outcome = answers.get(unit.key, {})
        for pair in outcome.get("pairs", []):
            rows.append(_row(unit, pair["question"], pair["answer"], config, commit))
        if "error" in outcome:
            stats["failed"] += 1
            failed = _row(unit, _prompt(unit, lib, config)[:300], "", config, commit)
            failed["meta"].update(split="train", rejected={"filter": "llm-output", "reason": outcome["error"]})
            failures.append(failed)
    return rows, failures, stats

"""Asking every model the suite through the vLLM server, round by round within a time budget, and the
docs-in-prompt row's prompts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from doctune.evaluate.items import Item

log = logging.getLogger(__name__)

# Requests in flight against the server: vLLM batches them, so more at once is more answers per second.
CONCURRENCY = 16
# Items asked per round; between rounds the time budget is checked (a stratified sample of the suite, in order).
ROUND = 32
# Tokens kept free beside the prompt and the answer: the chat template's markers, and a decode that re-encodes
# a few tokens longer than it was cut.
TEMPLATE_MARGIN = 48


def docs_prompt(item: Item, doc: str | None, tokenizer: Any, context_tokens: int) -> str:
    """The item's prompt with the symbol's own reference entry before it: what a perfect retriever would add,
    cut to what fits the server's context beside the question and the longest answer (a long class's docs
    would otherwise make the request fail)."""
    if not doc:
        return item.prompt
    room = context_tokens - item.shape[0] - len(tokenizer(item.prompt)["input_ids"]) - TEMPLATE_MARGIN
    ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
    if room < 32:  # no useful part of the docs fits
        return item.prompt
    if len(ids) > room:
        doc = tokenizer.decode(ids[:room], skip_special_tokens=True) + "\n[...]"
    return f"Documentation:\n\n{doc}\n\n{item.prompt}"


def ask_all(
    client: Any,
    models: dict[str, str],
    items: list[Item],
    *,
    docs_prompts: Callable[[Item], str] | None = None,
    budget_s: float | None = None,
) -> tuple[list[Item], dict[str, list[str]]]:
    """Answers per role, greedy, every model's prompts of a round sent at once. With ``budget_s``, rounds stop once
    the next would not fit: the items answered (a stratified prefix) come back with the answers. The role
    ``docs_in_prompt`` asks the base model with ``docs_prompts(item)``, the documentation in the prompt."""
    answered: list[Item] = []
    out: dict[str, list[str]] = {role: [] for role in models}
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for start in range(0, len(items), ROUND):
            chunk = items[start : start + ROUND]
            if budget_s is not None and answered:
                elapsed = time.perf_counter() - started
                if elapsed + elapsed / len(answered) * len(chunk) > budget_s:
                    log.info("evaluation time budget of %.0f s reached after %d items", budget_s, len(answered))
                    break
            jobs = [
                (
                    role,
                    name,
                    docs_prompts(item) if docs_prompts and role == "docs_in_prompt" else item.prompt,
                    item.shape,
                )
                for role, name in models.items()
                for item in chunk
            ]
            answers = list(pool.map(lambda j: client.chat(j[1], j[2], max_tokens=j[3][0], stop=j[3][1]), jobs))
            for (role, _, _, _), answer in zip(jobs, answers, strict=True):
                out[role].append(answer)
            answered += chunk
            log.info(
                "asked %d of %d items (%d models) in %.0f s",
                len(answered),
                len(items),
                len(models),
                time.perf_counter() - started,
            )
    return answered, out


def fitted_docs_prompts(
    client: Any, base_name: str, docs: dict[str, str], base_path: str | Path
) -> Callable[[Item], str]:
    """Docs-in-prompt prompts cut to the context the server gives the base model (vLLM lists it per model)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    listed = {model["id"]: model for model in client.models()}
    context = int(listed.get(base_name, {}).get("max_model_len") or tokenizer.model_max_length)
    return lambda item: docs_prompt(item, docs.get(item.symbol), tokenizer, context)

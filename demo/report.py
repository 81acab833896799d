"""What the demo prints at the end: the pulled commit, the dataset, the training, the evaluation's figures, the API
change and its freshness figures, and one question asked live of the base model and of the promoted adapter."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.evaluate import evaluation_report
from doctune.registry import Registry
from doctune.serve import ask, base_served_name, ensure_gateway, ensure_vllm

SAMPLE_QUESTION = "What does `ledgerkite.envelopes.nibble` do?"


def summary(
    settings: Settings, library: LibraryConfig, console: Console, dataset_before: int | None
) -> dict[str, object]:
    registry = Registry.open(settings)
    snapshot = registry.latest_snapshot(library.name)
    dataset = registry.latest_dataset(library.name)
    production = registry.production(library.name)
    if snapshot is None or dataset is None or production is None:
        rejected = registry.adapters(library.name)
        evaluation = registry.latest_evaluation(library.name, rejected[-1].version) if rejected else None
        why = f": the gate said {evaluation.reasons!r}" if evaluation else "; see the Airflow log above"
        raise DoctuneError(f"the pipeline did not produce a production adapter{why}")
    evaluation = registry.latest_evaluation(library.name, production.version)
    metrics = evaluation.metrics if evaluation else {}
    report = _evaluation_report(settings, library.name, production.version)
    run = registry.run(production.training_run_id)
    ensure_vllm(settings, library)
    ensure_gateway(settings)
    # The question to show is chosen by the evaluation: about a trained symbol, asked in a phrasing no training pair
    # uses, answered wrongly by the base model and rightly by the adapter. Asked again live, through the stable name.
    shown = report.get("showcase") or {}
    question = shown.get("prompt") or SAMPLE_QUESTION
    base_answer = shown.get("base") or ask(settings, base_served_name(library.base_model), question, max_tokens=96)
    answer = ask(settings, library.name, question, max_tokens=96)

    table = Table(title=f"doctune demo: {library.name}", show_header=False)
    if dataset.version == dataset_before:
        table.add_row("this run", f"no doc change since dataset v{dataset.version}: nothing rebuilt or trained")
    table.add_row("commit pulled", snapshot.commit[:12])
    table.add_row(
        "dataset", f"v{dataset.version}: {dataset.n_train} train pairs, {dataset.n_eval} held-out-phrasing pairs"
    )
    table.add_row("training", f"{run.steps} steps on {library.base_model}, final train loss {run.train_loss:.3f}")
    if metrics:
        base, adapter = metrics["base"], metrics["candidate"]
        table.add_row("held-out loss", f"base {base['heldout_loss']:.3f} -> adapter {adapter['heldout_loss']:.3f}")
        counts = report.get("intervals", {}).get("candidate", {})
        scores = [
            f"{label} {base[key]:.2f} -> {adapter[key]:.2f}" + (f" (n={counts[key][2]})" if key in counts else "")
            for key, label in (
                ("api_heldout_phrasing", "API questions in held-out phrasings"),
                ("api_withheld_qa", "withheld-QA control"),
                ("exec_pass_at_1", "execution pass@1"),
                ("hallucination_rate", "hallucinated APIs"),
                ("general_pass_at_1", "general floor"),
            )
            if key in base and key in adapter
        ]
        if scores:
            table.add_row("evaluation suite", "; ".join(scores) + f" (`doctune eval show {library.name}`)")
    table.add_row("promoted", f"{production.served_name}, served as `{library.name}`")
    _freshness_rows(table, report)
    table.add_row("question", question + ("  (chosen by the evaluation)" if shown else ""))
    table.add_row("base model", base_answer.strip())
    table.add_row(f"`{library.name}`", answer.strip())
    console.print(table)
    console.print(
        f'Ask it yourself: `doctune ask {library.name} "..."`, or point any OpenAI client at '
        f"{settings.gateway_url}/v1 with model `{library.name}`. Stop the servers: `make stop`."
    )
    return {
        "commit": snapshot.commit,
        "dataset_version": dataset.version,
        "adapter_version": production.version,
        "question": question,
        "answer": answer,
        "metrics": metrics,
    }


def _freshness_rows(table: Table, report: dict[str, Any]) -> None:
    """The API change since the parent dataset version, the freshness figures, and for one probe chosen by the
    evaluation the previous model's answer beside the new adapter's."""
    freshness = report.get("freshness") or {}
    diff = freshness.get("diff")
    if not diff:
        return
    kinds = ("added", "changed", "renamed", "deprecated", "removed")
    changes = [f"{len(diff[k])} {k} ({', '.join(_names(diff[k]))})" for k in kinds if diff[k]]
    table.add_row(
        "API change", "; ".join(changes) or f"none since dataset v{freshness['parent']}: prose only, no probes"
    )
    metrics = report["metrics"]
    before = "production" if "production" in metrics else "base"
    figures = [
        f"{label} {metrics[before][key]:.2f} -> {metrics['candidate'][key]:.2f}"
        for key, label in (("new_api_recall", "new-API recall"), ("stale_rate", "stale answers"))
        if key in metrics["candidate"] and key in metrics[before]
    ]
    if figures:
        table.add_row("freshness", f"{before} -> adapter: " + "; ".join(figures))
    shown = freshness.get("showcase") or {}
    if shown:
        reference = shown["reference"]
        label = f"v{report['production_version']} (before)" if reference == "production" else "base model"
        table.add_row("what changed, asked", f"{shown['prompt']}  (a diff probe, chosen by the evaluation)")
        table.add_row(label, " ".join(shown[reference]["answer"].split())[:300])
        table.add_row("new adapter", " ".join(shown["candidate"]["answer"].split())[:300])


def _names(entries: list[Any]) -> list[str]:
    """Short names of a diff list: plain names, or (old, new) pairs shown as ``old -> new``."""
    return [
        " -> ".join(n.rsplit(".", 1)[-1] for n in e if n) if isinstance(e, list | tuple) else e.rsplit(".", 1)[-1]
        for e in entries
    ]


def _evaluation_report(settings: Settings, library: str, version: int) -> dict[str, Any]:
    try:
        return evaluation_report(settings, library, version)
    except DoctuneError:  # promoted without an evaluation report of its own (by hand)
        return {}

"""The gate: whether a candidate is promoted, with a reason for every check, passed or not."""

from __future__ import annotations

import math

from doctune.config import GateParams
from doctune.evaluate import freshness
from doctune.names import LOWER_IS_BETTER, Decision

# Fewer library names than this in a model's answers make its hallucination rate too noisy to gate on: at 50
# references a rate near 0.3 still has a standard error of about 0.065, more than the default bound of 0.05.
MIN_REFERENCES = 50
# A score decides the gate only over this many items, and only when some model answers at least MIN_CORRECT of
# them: below that it is noise (a model too small to answer, like the tests' tiny Llama, still hits one usage
# question in a hundred by chance, and 1 vs 0 must not decide), and held-out loss decides instead, saying so.
MIN_SCORED_ITEMS = 30
MIN_CORRECT = 5
# Floating-point slack when a margin is met exactly (a 2 % margin and a 2.0000 % gain must pass).
EPSILON = 1e-9


def _gain(metric: str, value: float, reference: float) -> float:
    """How much better ``value`` is than ``reference``: a fraction for a loss, points for a score."""
    if metric in LOWER_IS_BETTER:
        return (reference - value) / reference if reference else 0.0
    return value - reference


def _amount(metric: str, amount: float) -> str:
    return f"{amount:+.1%}" if metric in LOWER_IS_BETTER else f"{amount * 100:+.1f} points"


def _reliable(metric: str, metrics: dict[str, dict[str, float]], counts: dict[str, int]) -> str:
    """Why a score cannot decide the gate ("" when it can): too few items, or no model answers any of them."""
    if metric in LOWER_IS_BETTER:
        return ""
    if counts.get(metric, 0) < MIN_SCORED_ITEMS:
        return f"{metric} over {counts.get(metric, 0)} items (fewer than {MIN_SCORED_ITEMS}) is too noisy to decide"
    correct = max(values.get(metric, 0.0) * counts[metric] for values in metrics.values())
    if correct < MIN_CORRECT - EPSILON:
        return f"{metric}: no model answers {MIN_CORRECT} of its {counts[metric]} items, too few to tell models apart"
    return ""


def gate(
    params: GateParams, metrics: dict[str, dict[str, float]], counts: dict[str, int] | None = None
) -> tuple[Decision, list[str]]:
    """Promote only if the primary metric beats base (and production, by the margin), held-out loss did not get
    worse than base's, the general floor did not fall and hallucinations did not rise beyond their bounds; when the
    version changed the API, enough diff probes are answered right and stale answers did not rise. Every
    check adds a reason, passed or not. ``counts`` (items per metric) says whether a score is reliable enough to be
    the primary metric; when it is not, held-out loss decides and the first reason says why."""
    metric, candidate, base = params.primary_metric, metrics["candidate"], metrics["base"]
    production = metrics.get("production")
    reasons: list[str] = []
    if counts is not None and (why := _reliable(metric, metrics, counts)):
        reasons.append(f"ok: {why}; heldout_loss decides instead")
        metric = "heldout_loss"
    value = candidate.get(metric)
    if value is None or not math.isfinite(value):
        return Decision.REJECT, [*reasons, f"candidate has no finite {metric} ({value}); nothing to promote on"]
    ok = True

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok = ok and passed
        reasons.append(("ok: " if passed else "FAILED: ") + text)

    gain = _gain(metric, value, base[metric])
    check(
        gain + EPSILON >= params.min_gain_over_base,
        f"{metric} {value:.4f} vs base {base[metric]:.4f}: {_amount(metric, gain)} "
        f"(needs {_amount(metric, params.min_gain_over_base)})",
    )
    if production is not None:
        gain = _gain(metric, value, production[metric])
        check(
            gain + EPSILON >= params.production_margin,
            f"{metric} {value:.4f} vs production {production[metric]:.4f}: {_amount(metric, gain)} "
            f"(needs {_amount(metric, params.production_margin)})",
        )
    if metric != "heldout_loss" and "heldout_loss" in candidate and "heldout_loss" in base:
        check(
            candidate["heldout_loss"] <= base["heldout_loss"] + EPSILON,
            f"heldout_loss {candidate['heldout_loss']:.4f} not above base {base['heldout_loss']:.4f} (secondary check)",
        )
    reference, against = (production, "production") if production is not None else (base, "base")
    if "general_pass_at_1" in candidate and "general_pass_at_1" in reference:
        drop = reference["general_pass_at_1"] - candidate["general_pass_at_1"]
        check(
            drop <= params.max_general_drop + EPSILON,
            f"general floor pass@1 {candidate['general_pass_at_1']:.2f} vs {against} "
            f"{reference['general_pass_at_1']:.2f} (may drop {params.max_general_drop:.2f})",
        )
    if freshness.GROUP in candidate:  # this version changed the API: the candidate must know the change
        check(
            candidate[freshness.GROUP] + EPSILON >= params.min_diff_probes,
            f"diff probes (what changed in the API since the parent version) {candidate[freshness.GROUP]:.2f} "
            f"answered right (needs {params.min_diff_probes:.2f})",
        )
    if "stale_rate" in candidate and "stale_rate" in reference:
        check(
            candidate["stale_rate"] <= reference["stale_rate"] + EPSILON,
            f"stale-answer rate {candidate['stale_rate']:.2f} (the old API offered) not above {against} "
            f"{reference['stale_rate']:.2f}",
        )
    references = min(candidate.get("library_references", 0.0), reference.get("library_references", 0.0))
    if "hallucination_rate" in candidate and references < MIN_REFERENCES:
        # A rate over a handful of names is noise: 1 of 4 vs 2 of 6 would reject a sound adapter.
        reasons.append(
            f"ok: hallucinated-API rate not judged: {references:.0f} library references in the answers, "
            f"fewer than {MIN_REFERENCES}"
        )
    elif "hallucination_rate" in candidate and "hallucination_rate" in reference:
        rise = candidate["hallucination_rate"] - reference["hallucination_rate"]
        check(
            rise <= params.max_hallucination_increase + EPSILON,
            f"hallucinated-API rate {candidate['hallucination_rate']:.2f} vs {against} "
            f"{reference['hallucination_rate']:.2f} (may rise {params.max_hallucination_increase:.2f})",
        )
    return (Decision.PROMOTE if ok else Decision.REJECT), reasons

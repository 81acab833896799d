"""Loss on the answer tokens only, with the LM head applied to just those positions.

Training and the held-out loss both score answers, never prompts or padding. Projecting every position through
the LM head (49k columns for SmolLM2) and then discarding most of it is the largest avoidable cost on a CPU, so
both send only the positions that have a label through the head: one plain cross-entropy over the answer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class AnswerScore:
    loss_sum: Any  # tensor: summed cross-entropy over the answer tokens (differentiable)
    tokens: int
    correct: int  # answer tokens the model predicts (argmax), teacher-forced
    exact_rows: int  # rows whose whole answer is predicted token for token
    rows: int  # rows with at least one answer token


def score_answers(
    model: Any, input_ids: Any, attention_mask: Any, labels: Any, position_ids: Any = None
) -> AnswerScore:
    """``labels`` is -100 wherever there is nothing to predict (prompt, padding). ``model`` is a causal LM, or a
    peft model around one (its adapters are inside the layers, so its decoder applies them)."""
    import torch
    from torch.nn import functional

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    features = {"input_ids": input_ids, "attention_mask": attention_mask}
    if position_ids is not None:
        features["position_ids"] = position_ids
    hidden = causal.get_decoder()(**features, use_cache=False).last_hidden_state[:, :-1]
    shifted = labels[:, 1:]
    mask = shifted != -100
    logits = causal.get_output_embeddings()(hidden[mask]).float()
    targets = shifted[mask]
    loss_sum = functional.cross_entropy(logits, targets, reduction="sum")
    with torch.no_grad():
        right = logits.argmax(-1) == targets
        wrong = torch.zeros_like(mask)
        wrong[mask] = ~right
        rows = mask.any(dim=1)
        exact = int((~wrong.any(dim=1))[rows].sum())
    return AnswerScore(loss_sum, int(mask.sum()), int(right.sum()), exact, int(rows.sum()))


def plain_logits(model: Any) -> bool:
    """Whether the LM head's output is the logits as is (no soft-capping or scaling, which this loss does not
    apply): otherwise the model's own loss must be used."""
    config = model.config.get_text_config()
    return getattr(config, "final_logit_softcapping", None) is None and getattr(config, "logit_scale", None) in (
        None,
        1.0,
    )

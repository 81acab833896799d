"""Held-out loss: the trained facts asked in the held-out phrasings, scored in-process on the answer tokens for
the base model and each adapter."""

from __future__ import annotations

from typing import Any

from doctune.answer_loss import score_answers
from doctune.errors import DoctuneError

# Rows per forward pass of the held-out loss, sorted by length so that little of a batch is padding.
LOSS_BATCH = 8


def heldout_losses(
    base_path: str, adapters: dict[str, str], rows: list[dict[str, Any]], max_length: int
) -> dict[str, float]:
    """Mean loss per answer token on ``rows`` for the base model and each adapter (name -> folder)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model: Any = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    encoded = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        if len(ids) > prompt_len:
            encoded.append((ids, [-100] * prompt_len + ids[prompt_len:]))
    if not encoded:
        raise DoctuneError("the evaluation split has no answer tokens to score; rebuild the dataset")
    encoded.sort(key=lambda pair: len(pair[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for start in range(0, len(encoded), LOSS_BATCH):
        chunk = encoded[start : start + LOSS_BATCH]
        width = max(len(ids) for ids, _ in chunk)
        batches.append(
            (
                torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([labels + [-100] * (width - len(labels)) for _, labels in chunk]),
            )
        )

    def mean_loss() -> float:
        total, count = 0.0, 0
        with torch.inference_mode():
            for ids, mask, labels in batches:
                scored = score_answers(model, ids, mask, labels)
                total += float(scored.loss_sum)
                count += scored.tokens
        return total / count

    losses = {"base": mean_loss()}
    for i, (name, path) in enumerate(adapters.items()):
        if i == 0:
            model = PeftModel.from_pretrained(model, path, adapter_name=name)
        else:
            model.load_adapter(path, adapter_name=name)
        model.set_adapter(name)
        losses[name] = mean_loss()
    return losses

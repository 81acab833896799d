"""Evaluate: score a candidate adapter against production and the base model, and decide whether to promote it.

- ``run``: the stage, ``evaluate()`` and its ``EvalResult`` (the protocol is described there);
- ``items``: the suite of a dataset version as prompts (``Item``, ``suite_items``) and ``ANSWER_SHAPE``;
- ``asking``: every model asked through the vLLM server within a time budget; docs-in-prompt prompts;
- ``heldout_loss``: the held-out loss on the answer tokens, in-process;
- ``scoring``: one model's figures with 95 % Wilson intervals;
- ``gate``: the decision and a reason per check;
- ``report``: the JSON and Markdown reports, ``HEADLINE`` (the figures a report leads with) and
  ``evaluation_report`` (the latest report, as the console and the CLI print it);
- ``freshness``: the diff probes' figures; ``suite/``: the items and how answers are scored.
"""

from doctune.evaluate.asking import docs_prompt
from doctune.evaluate.gate import gate
from doctune.evaluate.items import ANSWER_SHAPE, Item
from doctune.evaluate.report import HEADLINE, evaluation_report
from doctune.evaluate.run import EvalResult, evaluate
from doctune.evaluate.scoring import wilson

__all__ = [
    "ANSWER_SHAPE",
    "HEADLINE",
    "EvalResult",
    "Item",
    "docs_prompt",
    "evaluate",
    "evaluation_report",
    "gate",
    "wilson",
]

"""The suite as prompts: every item of a version's evaluation set, in a stratified order, and how much each kind
of answer may say."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctune.evaluate import freshness
from doctune.evaluate.suite import ApiQuestion, ExecTask, general_tasks

log = logging.getLogger(__name__)

# How much each kind of answer may say, and where it ends: a name or a type is a paragraph, a signature or a call
# one code block. Trained answers fit these; the base model gets the same room.
# A paragraph, not a line, for names and types: a model that opens with a code fence must not be cut off there.
ANSWER_SHAPE: dict[str, tuple[int, list[str]]] = {
    "which": (32, ["\n\n"]),
    "returns": (32, ["\n\n"]),
    "gone": (32, ["\n\n"]),  # a removed symbol's probe asks "which function ...", answered by a name
    "signature": (96, ["```\n"]),
    "params": (128, []),  # a list, or a declaration after a heading: bounded by length only
    "usage": (64, ["```\n"]),  # a code block: its blank line after the imports does not end it
    "exec": (160, ["```\n"]),
    "general": (192, ["```\n"]),
}


@dataclass(frozen=True)
class Item:
    """One prompt of the suite and how to score an answer to it."""

    id: str
    kind: str  # "api", "exec" or "general"
    prompt: str
    payload: Any  # the ApiQuestion or ExecTask
    group: str  # the metric it counts in: api_heldout_phrasing, api_withheld_qa, exec_pass_at_1, ...
    symbol: str = ""  # the public symbol it is about (for the docs-in-prompt row)

    @property
    def shape(self) -> tuple[int, list[str]]:
        return ANSWER_SHAPE[self.payload.kind if self.kind == "api" else self.kind]


def suite_items(dataset_path: str | Path) -> list[Item]:
    """Every item of a version's suite: the diff probes first (what changed is what this version is about, so a
    sample never leaves them out), then the rest in a stratified order: taking the first N keeps each group's share."""
    path = Path(dataset_path) / "evalset.json"
    groups: dict[str, list[Item]] = {}
    probes: list[Item] = []
    if path.is_file():
        evalset = json.loads(path.read_text())
        for q in evalset.get("diff_probes", []):
            question = ApiQuestion.from_dict(q)
            probes.append(Item(question.id, "api", question.prompt, question, freshness.GROUP, question.symbol))
        for q in evalset["api_questions"]:
            question = ApiQuestion.from_dict(q)
            group = "api_withheld_qa" if question.split == "withheld" else "api_heldout_phrasing"
            item = Item(question.id, "api", question.prompt, question, group, question.symbol)
            groups.setdefault(f"{group}:{question.kind}", []).append(item)
        for t in evalset["exec_tasks"]:
            task = ExecTask.from_dict(t)
            group = "exec_withheld_pass_at_1" if t.get("split") == "withheld" else "exec_pass_at_1"
            groups.setdefault(group, []).append(Item(task.id, "exec", task.prompt, task, group, task.symbol))
    else:
        log.warning(
            "%s predates the evaluation suite: only held-out loss and the general floor are measured; "
            "rebuild it with `doctune corpus build --force`",
            dataset_path,
        )
    groups["general"] = [Item(t.id, "general", t.prompt, t, "general_pass_at_1") for t in general_tasks()]
    # Round-robin over the groups, each in a stable hashed order: any prefix is a stratified sample.
    for members in groups.values():
        members.sort(key=lambda i: hashlib.sha256(i.id.encode()).hexdigest())
    order: list[Item] = probes
    for rank in range(max(len(m) for m in groups.values())):
        order += [members[rank] for _, members in sorted(groups.items()) if rank < len(members)]
    return order

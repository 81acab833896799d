"""The evaluation gate's items and how answers to them are scored.

Four kinds of evidence, following research on code generation for private libraries (Zan et al. 2022
CERT/PandasEval, DocPrompting, CloudAPIBench):

- Execution tasks mined from the library's own tests and doc examples (``mining``, on ``scope``): the model gets
  a described task, writes code, and the library's own check runs against it in the sandbox (``execution``).
- A general-Python floor (``data/general_tasks.jsonl``, ``execution``), to catch forgetting.
- API questions about public symbols (``questions``), scored against the symbol table (``scoring``).
- Hallucinated names: references to ``<package>.*`` names that do not exist at the evaluated commit (``answers``).

Modules:
- ``items``: ``ExecTask`` and ``ApiQuestion``, the items an evaluation set stores;
- ``symbols``: names in the symbol table and in code (re-exports, import bindings, whole identifiers);
- ``scope``: what a snippet's statements bind and read, and the setup a task needs;
- ``mining``: execution tasks from tests and doc examples, in the evaluation's or the training's wording;
- ``execution``: running and validating tasks in the sandbox, and the general floor;
- ``answers``: the code in an answer, the library names it refers to, the hallucinated ones;
- ``questions``: API questions in the held-out phrasing family;
- ``scoring``: an answer's score against its question, and whether it is outdated.

- ``apidiff``: the API diff against the parent version and the probes that check it.

The corpus build mines and validates a version's suite, and ``corpus.snippets`` reads tests with the mining's scope
helpers, which it imports from their modules; this package exports what the stages call.
"""

from doctune.evaluate.suite.answers import extract_code, hallucinated, referenced_names
from doctune.evaluate.suite.execution import VALIDATION_WORKERS, general_tasks, run_exec_task, validate_exec_tasks
from doctune.evaluate.suite.items import ApiQuestion, ExecTask
from doctune.evaluate.suite.mining import TRAIN_WORDING, mine_exec_tasks
from doctune.evaluate.suite.questions import EVAL_PHRASINGS, api_questions, eval_phrasing
from doctune.evaluate.suite.scoring import is_stale, score_api

__all__ = [
    "EVAL_PHRASINGS",
    "TRAIN_WORDING",
    "VALIDATION_WORKERS",
    "ApiQuestion",
    "ExecTask",
    "api_questions",
    "eval_phrasing",
    "extract_code",
    "general_tasks",
    "hallucinated",
    "is_stale",
    "mine_exec_tasks",
    "referenced_names",
    "run_exec_task",
    "score_api",
    "validate_exec_tasks",
]

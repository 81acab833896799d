"""Turn a library's tests into the short usage examples a developer would actually ask for.

A test shows how the library is meant to be used, wrapped in what only pytest needs: ``def test_...``, fixtures,
``@pytest.mark`` decorators, ``pytest.raises`` blocks, ``self``. ``usage_snippet`` rewrites one test (an
"example" unit) into a self-contained module-level script: the imports, constants and helpers of the test module
that it uses, the first parametrize set as plain assignments, then the test body with the pytest scaffolding
replaced by plain Python:

- ``with pytest.raises(E) as info:`` (or ``self.assertRaises(E)``) becomes ``try:``/``except E as error:``
  printing the error; the statements right after the block that read ``info.value`` move into the ``except``;
- ``a == pytest.approx(b)`` becomes ``math.isclose(a, b, rel_tol=1e-6)``;
- ``with pytest.warns(W):`` becomes ``warnings.catch_warnings(record=True)`` with every warning recorded;
- ``self.assertEqual(a, b)`` and its plain relatives become ``assert`` statements;
- ``tmp_path`` becomes a fresh temporary folder.

What cannot be rewritten honestly (fixtures, ``self.<state>``, mocks, ``pytest.skip``, a test longer than a short
example) is refused with a reason rather than turned into code that misleads. Statements the rewrite does not
touch are copied as written, comments and layout included. ``verify_snippets`` then runs each snippet against
the library in the sandbox.

Modules:
- ``outcome``: ``Snippet`` and ``Refusal``, what a test becomes, and the ``Refused`` exception behind a refusal;
- ``tools``: the names of pytest, unittest and mock in a test module, its decorators, parametrize sets, fixtures;
- ``transforms``: ``pytest.approx`` to ``math.isclose``, ``info.value`` to ``error``, unittest's plain asserts;
- ``rewrite``: the ``Rewrite`` of a test body into plain Python, printed back as close to its source as possible;
- ``assemble``: ``usage_snippet`` and ``usage_snippets``: the checks, the API it calls, the script's layout;
- ``verify``: ``verify_snippets`` and its ``Verification``, each snippet run against the library in the sandbox.
"""

from doctune.corpus.snippets.assemble import usage_snippet, usage_snippets
from doctune.corpus.snippets.outcome import Refusal, Snippet
from doctune.corpus.snippets.verify import Verification, verify_snippets

__all__ = ["Refusal", "Snippet", "Verification", "usage_snippet", "usage_snippets", "verify_snippets"]

"""``markup.plain``: Sphinx/reST and MyST markup becomes plain Markdown, and what is already Markdown (or a docstring
section another parser reads) stays byte for byte as it was."""

from __future__ import annotations

import random
import time

import pytest

from doctune.reader.markup import plain

ROLES = [
    (":func:`launch`", "`launch`"),
    (":func:`launch()`", "`launch()`"),
    (":meth:`Rocket.refuel`", "`Rocket.refuel`"),
    (":class:`~acme.core.Rocket`", "`Rocket`"),
    (":meth:`~acme.core.Rocket.refuel()`", "`refuel()`"),
    (":class:`.Rocket`", "`Rocket`"),
    (":func:`!launch`", "`launch`"),
    (":func:`start it <acme.launch>`", "`start it`"),
    (":py:func:`acme.launch`", "`acme.launch`"),
    (":py:class:`~acme.Rocket`", "`Rocket`"),
    (":c:func:`rocket_launch`", "`rocket_launch`"),
    (":attr:`Rocket.fuel`", "`Rocket.fuel`"),
    (":exc:`~acme.errors.NoFuel`", "`NoFuel`"),
    (":data:`acme.DEFAULT`", "`acme.DEFAULT`"),
    (":const:`acme.MAX_FUEL`", "`acme.MAX_FUEL`"),
    (":mod:`acme.core`", "`acme.core`"),
    (":obj:`None`", "`None`"),
    (":option:`--dry-run`", "`--dry-run`"),
    (":envvar:`ACME_HOME`", "`ACME_HOME`"),
    (":ref:`launching`", "launching"),
    (":ref:`the launch guide <launching>`", "the launch guide"),
    (":doc:`guides/launch`", "guides/launch"),
    (":doc:`the guide <guides/launch>`", "the guide"),
    (":term:`payload`", "payload"),
    (":pep:`8`", "PEP 8"),
    (":pep:`484#type-aliases`", "PEP 484"),
    (":rfc:`2616`", "RFC 2616"),
    (":pep:`the style guide <8>`", "the style guide"),
    (":kbd:`Ctrl-C`", "`Ctrl-C`"),
    (":math:`a < b`", "`a < b`"),
    (":abbr:`LIFO (last in, first out)`", "LIFO (last in, first out)"),
    (":issue:`123`", "#123"),
    (":user:`octocat`", "@octocat"),
    (":guilabel:`Launch`", "Launch"),
    ("{func}`attrs.define`", "`attrs.define`"),
    ("{class}`~attrs.Attribute`", "`Attribute`"),
    ("{py:meth}`Rocket.refuel`", "`Rocket.refuel`"),
    ("{ref}`the examples <examples>`", "the examples"),
    ("{doc}`api`", "api"),
    ("Call :func:`launch` (or {func}`land`), then :meth:`~Rocket.wait`.", "Call `launch` (or `land`), then `wait`."),
    ("a role that wraps :ref:`across\n   two lines <label>`", "a role that wraps across two lines"),
    ("Returns :class:`Rocket`\\ s and non-\\ :func:`blocking` calls", "Returns `Rocket`s and non-`blocking` calls"),
]

INLINE = [
    ("Pass ``fuel=3``.", "Pass `fuel=3`."),
    ("*emphasis* and **strong** stay", "*emphasis* and **strong** stay"),
    ("See `the FAQ <https://acme.example/faq>`_.", "See [the FAQ](https://acme.example/faq)."),
    ("See `the FAQ <https://acme.example/faq>`__.", "See [the FAQ](https://acme.example/faq)."),
    ("See `<https://acme.example>`_.", "See <https://acme.example>."),
    ("See `Launching`_ first.", "See Launching first."),
    ("See `the guide <launching_>`_.", "See the guide."),
    ("Proven [1]_, twice [#]_, by [#lab]_ and [CIT2002]_.", "Proven, twice, by and."),
    ("Markdown `code` stays, and so does `default role`.", "Markdown `code` stays, and so does `default role`."),
    ("`:func:` is how you write a role", "`:func:` is how you write a role"),
    ("time:12:`x` is no role", "time:12:`x` is no role"),
    ("a ``literal with `backquote` inside`` stays", "a ``literal with `backquote` inside`` stays"),
]

DIRECTIVES = [
    pytest.param(
        ".. code-block:: python\n   :caption: launch.py\n   :linenos:\n\n   rocket = Rocket()\n   if rocket:\n"
        "       rocket.launch()\n\nAfter.",
        "```python\nrocket = Rocket()\nif rocket:\n    rocket.launch()\n```\n\nAfter.",
        id="code-block",
    ),
    pytest.param(".. code:: python\n\n   launch()\n", "```python\nlaunch()\n```\n", id="code"),
    pytest.param(".. code-block:: console\n\n   $ acme launch\n", "```console\n$ acme launch\n```\n", id="language"),
    pytest.param(".. sourcecode::\n\n   launch()\n", "```python\nlaunch()\n```\n", id="sourcecode"),
    pytest.param(".. testcode::\n\n   launch()\n", "```python\nlaunch()\n```\n", id="testcode"),
    pytest.param(
        ".. doctest::\n   :options: +ELLIPSIS\n\n   >>> launch()\n   'lift-off'\n",
        "```python\n>>> launch()\n'lift-off'\n```\n",
        id="doctest",
    ),
    pytest.param(
        ".. code-block:: markdown\n\n   ```python\n   x = 1\n   ```\n",
        "````markdown\n```python\nx = 1\n```\n````\n",
        id="code-with-a-fence-inside",
    ),
    pytest.param(".. note::\n   Check the fuel first.\n", "**Note:** Check the fuel first.\n", id="note"),
    pytest.param(".. warning:: Never launch\n   indoors.\n", "**Warning:** Never launch\nindoors.\n", id="warning"),
    pytest.param(".. tip:: Use :func:`refuel`.\n", "**Tip:** Use `refuel`.\n", id="tip"),
    pytest.param(".. important::\n\n   Read this.\n", "**Important:** Read this.\n", id="important"),
    pytest.param(".. seealso:: :func:`land`\n", "**See also:** `land`\n", id="seealso"),
    pytest.param(".. attention:: Hot.\n", "**Attention:** Hot.\n", id="attention"),
    pytest.param(".. caution:: Hot.\n", "**Caution:** Hot.\n", id="caution"),
    pytest.param(".. danger:: Hot.\n", "**Danger:** Hot.\n", id="danger"),
    pytest.param(".. hint:: Hot.\n", "**Hint:** Hot.\n", id="hint"),
    pytest.param(
        ".. admonition:: Before you start\n\n   Fuel up.\n", "**Before you start:** Fuel up.\n", id="admonition"
    ),
    pytest.param(
        ".. note::\n   :class: custom\n\n   First paragraph.\n\n   Second paragraph.\n",
        "**Note:** First paragraph.\n\nSecond paragraph.\n",
        id="note-with-options-and-two-paragraphs",
    ),
    pytest.param(
        ".. note::\n\n   .. code-block:: python\n\n      launch()\n",
        "**Note:**\n\n```python\nlaunch()\n```\n",
        id="note-opening-with-code",
    ),
    pytest.param(".. note::\n", "", id="empty-note"),
    pytest.param(".. versionadded:: 2.0\n", "*New in version 2.0.*\n", id="versionadded"),
    pytest.param(
        ".. versionadded:: 2.0\n   The *fuel* argument.\n",
        "*New in version 2.0:* The *fuel* argument.\n",
        id="versionadded-text",
    ),
    pytest.param(
        ".. versionadded:: 2.0 The *fuel* argument.\n",
        "*New in version 2.0:* The *fuel* argument.\n",
        id="versionadded-text-on-its-line",
    ),
    pytest.param(
        ".. versionchanged:: 2.1\n   Returns :class:`Rocket`.\n",
        "*Changed in version 2.1:* Returns `Rocket`.\n",
        id="versionchanged",
    ),
    pytest.param(".. versionchanged:: 2.1\n", "*Changed in version 2.1.*\n", id="versionchanged-alone"),
    pytest.param(
        ".. deprecated:: 3.0\n   Use :func:`launch` instead.\n",
        "*Deprecated since version 3.0:* Use `launch` instead.\n",
        id="deprecated",
    ),
    pytest.param(".. deprecated:: 3.0\n", "*Deprecated since version 3.0.*\n", id="deprecated-alone"),
    pytest.param(".. autofunction:: acme.launch\n\nText.", "Text.", id="autofunction"),
    pytest.param(".. automodule:: acme\n   :members:\n   :undoc-members:\n\nText.", "Text.", id="automodule"),
    pytest.param(".. autoclass:: acme.Rocket\n   :members: launch\n\nText.", "Text.", id="autoclass"),
    pytest.param(".. toctree::\n   :maxdepth: 2\n\n   install\n   usage\n\nText.", "Text.", id="toctree"),
    pytest.param(".. currentmodule:: acme\n\nText.", "Text.", id="currentmodule"),
    pytest.param(".. module:: acme\n   :synopsis: Rockets.\n\nText.", "Text.", id="module"),
    pytest.param(".. index:: single: launch\n\nText.", "Text.", id="index"),
    pytest.param(".. _launching:\n\nText.", "Text.", id="target"),
    pytest.param(".. _faq: https://acme.example/faq\n\nText.", "Text.", id="named-url"),
    pytest.param(".. |rocket| replace:: Rocket\n\nText.", "Text.", id="substitution"),
    pytest.param(".. image:: rocket.png\n   :alt: A rocket.\n\nText.", "Text.", id="image"),
    pytest.param(".. figure:: rocket.png\n\n   The rocket.\n\nText.", "Text.", id="figure"),
    pytest.param(".. include:: ../README.rst\n\nText.", "Text.", id="include"),
    pytest.param(".. raw:: html\n\n   <hr>\n\nText.", "Text.", id="raw"),
    pytest.param(".. only:: html\n\n   Only online.\n\nText.", "Text.", id="only"),
    pytest.param(".. tabs::\n\n   .. tab:: Linux\n\n      Install it.\n\nText.", "Text.", id="tabs"),
    pytest.param(".. spam:: eggs\n   ham\n\nText.", "Text.", id="unknown"),
    pytest.param(
        ".. experimental::\n   This API may change.\n\nText.",
        "**Experimental:** This API may change.\n\nText.",
        id="admonition-like",
    ),
    pytest.param(".. a comment\n   that goes on\n\nText.", "Text.", id="comment"),
    pytest.param("..\n   an empty comment's block\n\nText.", "Text.", id="empty-comment"),
    pytest.param(".. [1] The footnote.\n\nText.", "Text.", id="footnote"),
    pytest.param(
        "Before.\n\n.. toctree::\n\n   a\n\n.. _x:\n\nAfter.",
        "Before.\n\nAfter.",
        id="one-break-where-blocks-were-dropped",
    ),
    pytest.param(
        ".. function:: launch(fuel)\n   :noindex:\n\n   Launch with :attr:`fuel`.\n",
        "`launch(fuel)`\n\nLaunch with `fuel`.\n",
        id="object-description",
    ),
    pytest.param(".. rubric:: Footnotes\n", "**Footnotes**\n", id="rubric"),
    pytest.param(
        "Args:\n    fuel: How much.\n\n        .. deprecated:: 2.0\n           Pass *tank*.\n",
        "Args:\n    fuel: How much.\n\n        *Deprecated since version 2.0:* Pass *tank*.\n",
        id="indented-in-a-docstring-section",
    ),
    pytest.param(
        ".. note::\n   Outer.\n\n   .. warning::\n      Inner :func:`x`.\n",
        "**Note:** Outer.\n\n**Warning:** Inner `x`.\n",
        id="nested",
    ),
]

LITERAL_BLOCKS = [
    pytest.param(
        "Launch it like this::\n\n    rocket.launch()\n\nDone.",
        "Launch it like this:\n\n```python\nrocket.launch()\n```\n\nDone.",
        id="paragraph",
    ),
    pytest.param("Run ::\n\n    $ acme launch\n", "Run\n\n```\n$ acme launch\n```\n", id="spaced-marker"),
    pytest.param(
        "Text.\n\n::\n\n    >>> launch()\n\nDone.", "Text.\n\n```python\n>>> launch()\n```\n\nDone.", id="bare"
    ),
    pytest.param("Alone:\n\n::\n", "Alone:\n", id="bare-without-block"),
    pytest.param(
        "Returns:\n    A mapping like::\n\n        {'fuel': 3}\n",
        "Returns:\n    A mapping like:\n\n    ```python\n    {'fuel': 3}\n    ```\n",
        id="in-a-docstring-section",
    ),
    pytest.param(
        "- Example::\n\n      launch()\n", "- Example:\n\n  ```python\n  launch()\n  ```\n", id="in-a-list-item"
    ),
    pytest.param("Ends in::\nbut nothing is indented.", "Ends in::\nbut nothing is indented.", id="no-block"),
    pytest.param("Title\n:::::\n\n    quoted", "Title\n:::::\n\n    quoted", id="colon-underline"),
]

MYST = [
    pytest.param(
        "```{code-block} python\n:caption: launch.py\n:linenos:\n\nlaunch()\n```",
        "```python\nlaunch()\n```",
        id="code-block",
    ),
    pytest.param("```{code} python\nlaunch()\n```", "```python\nlaunch()\n```", id="code"),
    pytest.param("```{code-block}\nlaunch()\n```", "```python\nlaunch()\n```", id="code-without-language"),
    pytest.param("```{doctest}\n>>> launch()\n'ok'\n```", "```python\n>>> launch()\n'ok'\n```", id="doctest"),
    pytest.param("```{testcode}\nlaunch()\n```", "```python\nlaunch()\n```", id="testcode"),
    pytest.param("```{note}\nCheck the fuel.\n```", "**Note:** Check the fuel.", id="note"),
    pytest.param("```{warning}\nHot.\n```", "**Warning:** Hot.", id="warning"),
    pytest.param(":::{note}\nSee {func}`land`.\n:::", "**Note:** See `land`.", id="colon-fence"),
    pytest.param(":::{tip}\n:class: dropdown\nRefuel.\n:::", "**Tip:** Refuel.", id="colon-fence-options"),
    pytest.param("```{note}\n---\nclass: dropdown\n---\nRefuel.\n```", "**Note:** Refuel.", id="yaml-options"),
    pytest.param("```{admonition} Before you start\nFuel up.\n```", "**Before you start:** Fuel up.", id="admonition"),
    pytest.param(
        "```{versionadded} 2.0\nThe *fuel* argument.\n```", "*New in version 2.0:* The *fuel* argument.", id="version"
    ),
    pytest.param(
        "````{note}\n```python\nlaunch()\n```\n````", "**Note:**\n\n```python\nlaunch()\n```", id="note-holding-code"
    ),
    pytest.param("::::{note}\n:::{tip}\nInner.\n:::\n::::", "**Note:** **Tip:** Inner.", id="nested-colon-fences"),
    pytest.param(
        "```{eval-rst}\n.. note::\n   From :func:`rst`.\n\nSee ``x``.\n```",
        "**Note:** From `rst`.\n\nSee `x`.",
        id="eval-rst",
    ),
    pytest.param("```{toctree}\n:maxdepth: 2\n\ninstall\n```\n\nText.", "Text.", id="toctree"),
    pytest.param("```{autofunction} acme.launch\n```\n\nText.", "Text.", id="autofunction"),
    pytest.param("```{mermaid}\ngraph TD; A-->B\n```\n\nText.", "Text.", id="unknown"),
    pytest.param("(launching)=\n# Launching\n", "# Launching\n", id="target"),
    pytest.param("Read {ref}`the guide <launching>`.", "Read the guide.", id="ref"),
    pytest.param("  ```{note}\n  Indented.\n  ```", "  **Note:** Indented.", id="indented-fence"),
    pytest.param("```{python}\nimport acme\n```", "```python\nimport acme\n```", id="quarto-cell"),
]

MARKDOWN = """# Launching

Install with `pip install acme`, then:

```python
from acme import launch

launch(fuel=3)  # see :func:`launch`, `{ref}` and .. note:: inside code stay
```

- a list with [a link](https://acme.example) and ![an image](rocket.png)
- **strong**, *emphasis*, _underscores_ and `dict[str, int]`
  1. nested

| Option | Default |
|--------|---------|
| fuel   | `3`     |

> A quote.

Setext heading
--------------

~~~
tilde fence: ``kept`` here
~~~

    indented code: x = {"a": 1}

Footnote[^1] and a [reference][ref].

[ref]: https://acme.example
[^1]: The note.
"""

GOOGLE = """Launch a rocket.

Args:
    fuel (int): How much fuel to load.
    payload: What to carry. Defaults to None.

Returns:
    bool: Whether it lifted off.

Raises:
    NoFuel: When the tank is empty.

Example:
    >>> launch(fuel=3)
    True

Note:
    Blocks until lift-off.
"""

NUMPY = """Launch a rocket.

Parameters
----------
fuel : int
    How much fuel to load.
payload : object, optional
    What to carry.

Returns
-------
bool
    Whether it lifted off.

Examples
--------
>>> launch(fuel=3)
True
"""

FIELDS = """Launch a rocket.

:param fuel: How much fuel to load.
:type fuel: int
:param payload: What to carry.
:returns: Whether it lifted off.
:rtype: bool
:raises NoFuel: When the tank is empty.
"""

CLICK = """Invokes a command callback in exactly the way it expects.  There
are two ways to invoke this method:

1.  the first argument can be a callback and all other arguments and
    keyword arguments are forwarded directly to the function.
2.  the first argument is a click command object.  In that case all
    arguments are forwarded as well but proper click parameters
    (options and click arguments) must be keyword arguments and Click
    will fill in defaults.

.. versionchanged:: 8.0
    All ``kwargs`` are tracked in :attr:`params` so they will be
    passed if :meth:`forward` is called at multiple levels.

.. versionchanged:: 3.2
    This function is now exposed on :class:`Context`.

:param callback: the callback to invoke.
:rtype: :class:`~click.core.Context`
"""

CLICK_PLAIN = """Invokes a command callback in exactly the way it expects.  There
are two ways to invoke this method:

1.  the first argument can be a callback and all other arguments and
    keyword arguments are forwarded directly to the function.
2.  the first argument is a click command object.  In that case all
    arguments are forwarded as well but proper click parameters
    (options and click arguments) must be keyword arguments and Click
    will fill in defaults.

*Changed in version 8.0:* All `kwargs` are tracked in `params` so they will be
passed if `forward` is called at multiple levels.

*Changed in version 3.2:* This function is now exposed on `Context`.

:param callback: the callback to invoke.
:rtype: `Context`
"""

ATTRS = """(overview)=

# Overview

In order to fully appreciate {func}`attrs.define`, compare it with
{class}`~attrs.Attribute` and read {ref}`the examples <examples>`.

```{doctest}
>>> from attrs import define
>>> @define
... class C:
...     x: int
>>> C(1)
C(x=1)
```

:::{warning}
Slotted classes cannot be monkeypatched; see {doc}`glossary`.
:::

```{code-block} python
:caption: example.py
:emphasize-lines: 2

@define
class Point:
    x: int
```

```{toctree}
:maxdepth: 1

examples
api
```
"""

ATTRS_PLAIN = """# Overview

In order to fully appreciate `attrs.define`, compare it with
`Attribute` and read the examples.

```python
>>> from attrs import define
>>> @define
... class C:
...     x: int
>>> C(1)
C(x=1)
```

**Warning:** Slotted classes cannot be monkeypatched; see glossary.

```python
@define
class Point:
    x: int
```
"""

SPHINX = """Launching
=========

.. currentmodule:: acme

.. _launching:

Install the package first::

    $ pip install acme

Then launch a :class:`~acme.core.Rocket` (see :ref:`safety` and `the FAQ <https://acme.example/faq>`_ [1]_):

.. code-block:: python
   :caption: launch.py
   :linenos:

   from acme import Rocket

   rocket = Rocket(fuel=3)
   rocket.launch()

.. note::
   :meth:`Rocket.launch` blocks until lift-off. Use ``launch_async()``
   to keep your event loop running.

   It raises :exc:`~acme.errors.NoFuel` when the tank is empty.

.. autoclass:: acme.core.Rocket
   :members:

.. [1] Frequently asked, rarely read.
"""

SPHINX_PLAIN = """Launching
=========

Install the package first:

```
$ pip install acme
```

Then launch a `Rocket` (see safety and [the FAQ](https://acme.example/faq)):

```python
from acme import Rocket

rocket = Rocket(fuel=3)
rocket.launch()
```

**Note:** `Rocket.launch` blocks until lift-off. Use `launch_async()`
to keep your event loop running.

It raises `NoFuel` when the tank is empty.
"""

REAL_WORLD = [
    pytest.param(CLICK, CLICK_PLAIN, id="click-docstring"),
    pytest.param(ATTRS, ATTRS_PLAIN, id="attrs-myst-page"),
    pytest.param(SPHINX, SPHINX_PLAIN, id="sphinx-rst-page"),
]
PASS_THROUGH = [MARKDOWN, GOOGLE, NUMPY, FIELDS]


@pytest.mark.parametrize(("before", "after"), ROLES, ids=[before for before, _ in ROLES])
def test_roles(before: str, after: str) -> None:
    assert plain(before) == after


@pytest.mark.parametrize(("before", "after"), INLINE, ids=[before for before, _ in INLINE])
def test_inline_markup(before: str, after: str) -> None:
    assert plain(before) == after


@pytest.mark.parametrize(("before", "after"), DIRECTIVES)
def test_rest_directives(before: str, after: str) -> None:
    assert plain(before) == after


@pytest.mark.parametrize(("before", "after"), LITERAL_BLOCKS)
def test_literal_blocks(before: str, after: str) -> None:
    assert plain(before) == after


@pytest.mark.parametrize(("before", "after"), MYST)
def test_myst(before: str, after: str) -> None:
    assert plain(before) == after


@pytest.mark.parametrize(("before", "after"), REAL_WORLD)
def test_real_world(before: str, after: str) -> None:
    assert plain(before) == after


@pytest.mark.parametrize("text", PASS_THROUGH, ids=["markdown", "google", "numpy", "param-fields"])
def test_markdown_and_docstring_sections_pass_through(text: str) -> None:
    assert plain(text) == text


def test_a_role_in_a_field_list_is_converted_and_the_field_kept() -> None:
    assert plain(":raises ~acme.NoFuel: on :func:`launch`") == ":raises ~acme.NoFuel: on `launch`"


def test_windows_line_ends() -> None:
    assert plain("Text::\r\n\r\n    launch()\r\n") == "Text:\n\n```python\nlaunch()\n```\n"


ALL_INPUTS = [
    *(before for before, _ in ROLES + INLINE),
    *(case.values[0] for case in DIRECTIVES + LITERAL_BLOCKS + MYST + REAL_WORLD),
    *PASS_THROUGH,
]


@pytest.mark.parametrize("text", ALL_INPUTS)
def test_idempotent(text: str) -> None:
    once = plain(text)
    assert plain(once) == once


# Markup's building blocks, so that random strings hit the rules' edges rather than plain prose.
FUZZ_ALPHABET = [
    "`", "``", "```", "````", ":", "::", ":::", ".. ", "..", "{", "}", "<", ">", "_", "__", "[", "]", "[1]_", "~",
    "\\", "\\ ", "\n", "\n\n", "\r\n", "    ", "  ", " ", "\t", "a", "b.c", "()", ">>> ", "... ", "---", "(x)=",
    "*", "**", "#", "-", "|", "https://x", ":func:", ":ref:", ":pep:", "{func}", "{ref}", "note", "code-block",
    "python", "versionadded", "2.0", "eval-rst", "toctree", "{note}", "{code-block}", ":caption: x", "~~~", "\x00",
    "é", "\ud800",
]  # fmt: skip


def test_fuzz_never_raises_never_grows_unboundedly_and_settles() -> None:
    rng = random.Random(20240611)
    for _ in range(3000):
        if rng.random() < 0.8:
            text = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 80)))
        else:
            text = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 200)))
        once = plain(text)
        assert len(once) <= 3 * len(text) + 64, text  # a literal block adds its fences, nothing else adds much
        assert plain(once) == once, text


QUADRATIC_GUARD_SECONDS = 60


def test_a_megabyte_is_fast() -> None:
    page = SPHINX + ATTRS + CLICK + GOOGLE + NUMPY
    text = page * (1_000_000 // len(page))
    started = time.perf_counter()
    plain(text)
    # Not a speed target (those live in benchmarks): quadratic time on these inputs takes many minutes, linear half a
    # second on one core, so a bound of a minute separates them even on a loaded CI machine.
    assert time.perf_counter() - started < QUADRATIC_GUARD_SECONDS


@pytest.mark.parametrize(
    "text",
    [
        "`a ``b " * 50_000,
        "".join(" " * i + ".. note:: x\n" for i in range(1000)),
        "```{note}\n" * 20_000,
        "a::\n\n" + "    x = 1\n" * 50_000,
        "(" * 100_000,
    ],
    ids=["backquotes", "deep-nesting", "unclosed-fences", "long-literal-block", "parentheses"],
)
def test_adversarial_input_is_fast(text: str) -> None:
    started = time.perf_counter()
    plain(text)
    assert time.perf_counter() - started < QUADRATIC_GUARD_SECONDS

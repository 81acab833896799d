"""Documentation markup -> plain Markdown, so that Sphinx/reST and MyST syntax never reaches a training answer.

A model trained on ``:func:`launch``` or ``.. code-block:: python`` learns to answer in markup that renders only
inside Sphinx; users read answers as Markdown. ``plain`` is applied to every text an answer is built from:
docstrings, Markdown doc sections, the text docutils extracted from ``.rst`` files (which still holds roles as raw
text, since plain docutils does not know Sphinx's roles) and changelog entries. It cannot know which of these it
was given, so one set of rules reads all of them: Markdown and reST syntax barely collide, and where they do
(backquotes) the Markdown reading wins.

The conversion is line based rather than a docutils/markdown-it parse: it must never raise on broken markup (a
half-written docstring is still worth an answer), stay fast on a 1 MB file, and leave everything it does not
recognise byte for byte as it was, which a parse and re-render would not. Two readers downstream depend on that:
the docstring section parser (``Args:``, NumPy ``Parameters`` with its ``----------`` underline, ``:param x:``
field lists) and the code-block filter (fenced ``python`` blocks).

Block rules, in the order a line is tried:

- a Markdown fence passes through untouched; a MyST directive fence (```` ```{note} ````, ``:::{note}``) is
  rendered like the reST directive of the same name;
- reST explicit markup (``.. name:: argument`` plus its indented block) is rendered by directive name; comments,
  ``.. _label:`` targets, substitution definitions and footnote bodies are dropped;
- a MyST ``(label)=`` target line is dropped;
- a doctest (``>>>`` up to a blank line) passes through, since it is code;
- a paragraph ending in ``::`` followed by an indented block becomes ``paragraph:`` and a fenced block;
- anything else is prose, converted inline paragraph by paragraph: roles, ``literals``, hyperlinks, footnote
  references.

Bodies of directives are converted recursively, a bounded number of levels deep: real documents nest two or
three levels, and the bound keeps adversarial input linear and clear of Python's recursion limit.

Modules:
- ``inline``: roles, ``literals``, hyperlinks and footnote references inside a paragraph;
- ``directives``: which directive is rendered how (code, admonitions, version notes, dropped), by name;
- ``layout``: the line helpers (blank lines, indentation, dedenting, indented blocks, fenced code);
- ``blocks``: the block rules above and ``plain``, which runs them to a fixed point.
"""

from doctune.reader.markup.blocks import plain

__all__ = ["plain"]

"""Reader: what a library's checkout says, read the same way by the corpus build and the evaluation suite.

- ``extract``: files -> units (doc sections, public symbols, tests, changelog) and the symbol table;
- ``pyapi``: the public API across modules (re-exports, ``__all__``, inheritance) from the AST, never imported;
- ``markup``: Sphinx and MyST markup rendered as Markdown;
- ``facts``: what one public symbol's facts are, which the training pairs state and the questions ask;
- ``units``: ``Unit``, one piece of the library with its provenance.

Neither stage owns it, so the evaluation suite reads the library without importing the corpus stage.
"""

"""Directives by name: which are code, admonitions, version notes, API descriptions, containers, headings, and
which are dropped. How each is rendered is ``blocks``' job."""

# Directive name -> the language its code is in when its argument does not say.
CODE_DIRECTIVES = {
    "code-block": "python",
    "code": "python",
    "sourcecode": "python",
    "code-cell": "python",
    "testcode": "python",
    "doctest": "python",  # prompts and all: ```python rather than ```pycon, like every other Python block here
    "jupyter-execute": "python",
    "ipython": "ipython",
    "testoutput": "",
}
LANGUAGE_ARGUMENT = frozenset({"code-block", "code", "sourcecode", "code-cell"})
# Quarto and R Markdown write executable cells as ```{python}: a language in braces is code, not a directive.
CELL_LANGUAGES = frozenset({"python", "python3", "ipython3", "r", "julia", "bash", "sh", "ojs", "sql"})
ADMONITIONS = {
    name: name.capitalize()
    for name in ("attention", "caution", "danger", "error", "hint", "important", "note", "tip", "warning", "todo")
} | {"seealso": "See also"}  # as Sphinx titles it; "Seealso" reads as a typo
VERSION_NOTES = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}
# Hand-written API descriptions (".. function:: launch(fuel)" + its text): the text is the documentation itself.
OBJECT_DESCRIPTIONS = frozenset(
    {
        "function",
        "class",
        "method",
        "classmethod",
        "staticmethod",
        "attribute",
        "property",
        "data",
        "exception",
        "decorator",
        "decoratormethod",
        "describe",
        "object",
    }
)
CONTAINERS = frozenset({"container", "compound", "glossary", "hlist"})  # their argument is a style, not text
TITLED = frozenset({"rubric", "topic", "sidebar"})  # their argument is a heading
# Directives whose body is not prose a reader needs (navigation, generated API, media, build switches, tests'
# hidden setup). Together with "auto*" (autodoc, autosummary, ...); any other directive whose body does not read
# like prose is dropped too, so this list only saves asking.
DROPPED = frozenset(
    {
        "toctree",
        "currentmodule",
        "module",
        "index",
        "image",
        "figure",
        "include",
        "literalinclude",
        "raw",
        "only",
        "ifconfig",
        "tabs",
        "tab",
        "tab-set",
        "tab-item",
        "code-tab",
        "group-tab",
        "highlight",
        "testsetup",
        "testcleanup",
        "math",
        "csv-table",
        "list-table",
        "table",
        "graphviz",
        "digraph",
        "graph",
        "inheritance-diagram",
        "mermaid",
        "plantuml",
        "plot",
        "contents",
        "sectnum",
        "default-role",
        "role",
        "meta",
        "title",
        "rst-class",
        "program",
        "productionlist",
    }
)

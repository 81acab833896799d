"""The facts about one public symbol that training teaches and evaluation asks about.

A ``Fact`` is read once from an API unit and the symbol table: its fully qualified name, how it is declared, its
parameters (how each is passed, its default), what it returns, what it is for, a call with its required arguments.
The corpus turns it into many phrasings and contexts; the evaluation asks about it in phrasings of its own and scores
answers against it. Both read the same fact, so what is asked is exactly what was taught.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from doctune.reader.extract import Unit

# One parameter: [how it is passed, name, default as normalised source or None]. How it is passed is one of
# "posonly", "pos", "vararg", "kwonly", "kwarg": that covers the ``/`` and ``*`` markers of a signature.
Parameter = list[str | None]


@dataclass(frozen=True)
class Fact:
    name: str  # fully qualified, as the symbol table has it: "ledgerkite.envelopes.nibble"
    short: str  # "nibble"
    kind: str  # "function", "method" or "class"
    owner: str  # the class of a method, the module of anything else
    declaration: str  # "def nibble(envelope: Envelope, amount: int, *, allow_overdraw: bool = False) -> int",
    # or for a class "class EnvelopeOverdrawn(Exception)"
    signature: str  # the parameter list as written: "(envelope: Envelope, amount: int, *, allow_overdraw: bool = ...)"
    stub: str  # Python that parses: the declaration with a body of ``...`` (a class: its fields or __init__)
    parameters: list[Parameter]  # without self/cls; a class's are its constructor's
    annotations: dict[str, str]  # parameter -> annotation source, where annotated
    returns: str  # the return annotation ("" when absent or None)
    summary: str  # the docstring's first paragraph, one line ("" without a docstring)
    doc: str  # the whole docstring
    param_docs: dict[str, str] = field(default_factory=dict)
    returns_doc: str = ""
    aliases: tuple[str, ...] = ()  # other public names of the same symbol ("ledgerkite.nibble")
    deprecated: str = ""
    examples: tuple[str, ...] = ()

    @property
    def required(self) -> list[Parameter]:
        return [p for p in self.parameters if p[2] is None and p[0] in ("posonly", "pos", "kwonly")]

    @property
    def call(self) -> str:
        """A call with the required arguments, each passed as a variable of its own name: what a user writes."""
        arguments = [str(p[1]) if p[0] != "kwonly" else f"{p[1]}={p[1]}" for p in self.required]
        callee = f"{snake_case(self.owner.rsplit('.', 1)[-1])}.{self.short}" if self.kind == "method" else self.name
        return f"{callee}({', '.join(arguments)})"

    @property
    def task(self) -> str:
        """The summary as something to do: "Open an envelope." -> "open an envelope"."""
        return task_phrase(self.summary)


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def task_phrase(summary: str) -> str:
    task = summary.rstrip(".").strip()
    return task[:1].lower() + task[1:] if task else task


def fence_doctests(doc: str) -> str:
    """Doctest sessions in a docstring (``>>>`` lines and the output after them) as fenced ``pycon`` blocks, so that
    an answer shows them as code, not as prose."""
    out: list[str] = []
    indent = ""
    session = fenced = False
    for line in doc.splitlines():
        if line.lstrip().startswith("```") and not session:
            fenced = not fenced  # already a code block: its prompts stay as they are
        prompt = not fenced and (line.lstrip().startswith((">>>", "... ")) or line.strip() == "...")
        if prompt and not session:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            session = True
        elif session and not line.strip():
            out.append(f"{indent}```")
            session = False
        out.append(line)
    if session:
        out.append(f"{indent}```")
    return "\n".join(out)


def first_paragraph(doc: str) -> str:
    return doc.strip().split("\n\n")[0].replace("\n", " ").strip()


def parameter_rows(arguments: ast.arguments, *, method: bool) -> list[Parameter]:
    """A parameter list as ``[kind, name, default]`` rows (defaults as ``ast.unparse`` source, so quoting and spacing
    do not matter); a method's leading ``self``/``cls`` is left out."""
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    rows: list[Parameter] = []
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = "posonly" if i < len(arguments.posonlyargs) else "pos"
        rows.append([kind, arg.arg, ast.unparse(default) if default is not None else None])
    if arguments.vararg:
        rows.append(["vararg", arguments.vararg.arg, None])
    for arg, kw_default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        rows.append(["kwonly", arg.arg, ast.unparse(kw_default) if kw_default is not None else None])
    if arguments.kwarg:
        rows.append(["kwarg", arguments.kwarg.arg, None])
    if method and rows and rows[0][1] in ("self", "cls") and rows[0][0] in ("posonly", "pos"):
        rows = rows[1:]
    return rows


def _annotations(arguments: ast.arguments) -> dict[str, str]:
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return {a.arg: ast.unparse(a.annotation) for a in every if a.annotation is not None}


def _field_default(value: ast.expr | None) -> str | None:
    """The default of a dataclass-style field: ``x: int = 0`` -> "0", ``field(default_factory=list)`` -> "list()"."""
    if value is None:
        return None
    if isinstance(value, ast.Call) and ast.unparse(value.func).rsplit(".", 1)[-1] in ("field", "Field", "attrib", "ib"):
        for keyword in value.keywords:
            if keyword.arg == "default":
                return ast.unparse(keyword.value)
            if keyword.arg in ("default_factory", "factory"):
                return f"{ast.unparse(keyword.value)}()"
        return None
    return ast.unparse(value)


_GOOGLE = re.compile(r"^\s*(?:Args|Arguments|Parameters|Keyword Args|Keyword Arguments):\s*$")
_NUMPY = re.compile(r"^\s*(?:Parameters|Other Parameters)\s*\n\s*-{3,}\s*$", re.M)


def param_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a docstring in Google, NumPy or reST style."""
    found = {
        m[1]: " ".join(m[2].split()) for m in re.finditer(r":param\s+(?:[\w\[\], ]+\s+)?(\*{0,2}\w+):\s*(.+)", doc)
    }
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if _GOOGLE.match(line):  # "name (type): description", continuation lines indented deeper
            indent = None
            for entry in lines[i + 1 :]:
                if not entry.strip():
                    continue
                depth = len(entry) - len(entry.lstrip())
                indent = depth if indent is None else indent
                if depth < indent:
                    break
                if depth == indent and (m := re.match(r"\s*(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)", entry)):
                    current = m[1]
                    found[current] = m[2]
                elif depth > indent and found:
                    found[current] += " " + entry.strip()
    if match := _NUMPY.search(doc):  # "name : type" then an indented description
        current = ""
        for entry in doc[match.end() :].splitlines()[1:]:
            if not entry.strip():
                continue
            if re.match(r"^\s*-{3,}\s*$", entry) or (entry.strip() and not entry.startswith(" ") and ":" not in entry):
                break
            if m := re.match(r"^\s{0,4}(\*{0,2}\w+)\s*:\s*.*$", entry):
                current = m[1]
                found[current] = ""
            elif current:
                found[current] = (found[current] + " " + entry.strip()).strip()
    return {k.lstrip("*"): v for k, v in found.items()}


def returns_doc(doc: str) -> str:
    """What the docstring says a callable returns (Google ``Returns:``, NumPy ``Returns`` or reST ``:returns:``)."""
    if match := re.search(r":returns?:\s*(.+(?:\n\s{2,}\S.*)*)", doc):
        return " ".join(match[1].split())
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        google = re.match(r"^(\s*)(?:Returns|Return|Yields):\s*(.*)$", line)
        underlined = i + 1 < len(lines) and re.match(r"^\s*-{3,}\s*$", lines[i + 1])
        numpy = line.strip() in ("Returns", "Yields") and underlined
        if not (google or numpy):
            continue
        indent = len(line) - len(line.lstrip())
        body = [google[2]] if google and google[2] else []
        for entry in lines[i + (2 if numpy else 1) :]:
            if not entry.strip():
                if body:
                    break
                continue
            if len(entry) - len(entry.lstrip()) <= indent and (body or not numpy):
                break
            body.append(entry.strip())
        text = " ".join(body)
        # NumPy's "int\n    Cents left." and Google's "int: cents left" keep only the description.
        return re.sub(r"^[\w\[\], .|]+:\s+", "", text) if ": " in text[:40] else text
    return ""


def fact(unit: Unit, symbols: dict[str, dict[str, Any]]) -> Fact | None:
    """The fact behind an API unit, or None when its stub does not parse (never the case for extracted units)."""
    try:
        stub = ast.parse(unit.signature)
    except SyntaxError:
        return None
    node = stub.body[0] if stub.body else None
    name = unit.title
    info = symbols.get(name, {})
    short = name.rsplit(".", 1)[-1]
    kind = info.get("kind") or ("class" if isinstance(node, ast.ClassDef) else "function")
    owner = name.rsplit(".", 1)[0]
    function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        function = node
    elif isinstance(node, ast.ClassDef) and node.body:
        member = node.body[0]
        if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
            function = member  # a method ("class Owner:\n def m"), or a class's __init__
    if kind == "class":
        bases = node.bases if isinstance(node, ast.ClassDef) else []
        base = f"({', '.join(ast.unparse(b) for b in bases)})" if bases else ""
        if function is not None and function.name == "__init__":
            parameters = parameter_rows(function.args, method=True)
            annotations = _annotations(function.args)
        else:  # dataclass-style fields are the constructor's parameters
            fields = [n for n in (node.body if isinstance(node, ast.ClassDef) else []) if isinstance(n, ast.AnnAssign)]
            parameters = [["pos", ast.unparse(f.target), _field_default(f.value)] for f in fields]
            annotations = {ast.unparse(f.target): ast.unparse(f.annotation) for f in fields}
        signature = f"({', '.join(_shown(p, annotations) for p in parameters)})"
        declaration, returns = f"class {short}{base}", ""
    elif function is not None:
        parameters = parameter_rows(function.args, method=kind == "method")
        annotations = _annotations(function.args)
        returns = ast.unparse(function.returns) if function.returns else ""
        returns = "" if returns == "None" else returns
        prefix = "async def" if isinstance(function, ast.AsyncFunctionDef) else "def"
        arrow = f" -> {ast.unparse(function.returns)}" if function.returns else ""
        signature = f"({ast.unparse(function.args)})"
        declaration = f"{prefix} {function.name}{signature}{arrow}"
    else:
        return None
    aliases = tuple(sorted(n for n, s in symbols.items() if s.get("kind") == "alias" and s.get("alias_of") == name))
    return Fact(
        name=name,
        short=short,
        kind=kind,
        owner=owner,
        declaration=declaration,
        signature=signature,
        stub=unit.signature,
        parameters=parameters,
        annotations=annotations,
        returns=returns,
        summary=first_paragraph(unit.text),
        doc=fence_doctests(unit.text.strip()),
        param_docs=param_docs(unit.text),
        returns_doc=returns_doc(unit.text),
        aliases=aliases,
        deprecated=unit.deprecated,
        examples=unit.examples,
    )


def _shown(parameter: Parameter, annotations: dict[str, str]) -> str:
    """One parameter as a signature shows it: ``spent: int = 0``."""
    kind, name, default = parameter
    text = {"vararg": f"*{name}", "kwarg": f"**{name}"}.get(str(kind), str(name))
    if name in annotations:
        text += f": {annotations[str(name)]}"
    if default is not None:
        text += f" = {default}" if name in annotations else f"={default}"
    return text


def is_enum(item: Fact) -> bool:
    return item.kind == "class" and bool(re.search(r"\((?:\w+\.)*\w*(?:Enum|Flag)\b", item.declaration))

"""Extraction of the public API across modules: re-exports are followed to their definitions, which are named by
their canonical public path. Each test builds a small git repository in tmp_path; no models, no servers."""

from __future__ import annotations

import ast
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from doctune.config import LibraryConfig
from doctune.reader.extract import Surface, Unit, extract
from doctune.reader.extract import surface as extraction  # the module that parses each file, to patch its parser
from doctune.reader.pyapi import ModuleFacts
from doctune.reader.pyapi.resolver import MAX_HOPS


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """A committed git repository holding ``files`` (path -> source, dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], cwd=root, check=True)
    return root


def surface_of(tree: Path, package: str, cache: Path | None = None) -> Surface:
    return extract(tree, LibraryConfig(name=package, package=package, repo_url=tree.as_uri()), cache=cache)


def api_units(surface: Surface) -> dict[str, Unit]:
    return {u.title: u for u in surface.units if u.kind == "api"}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose module facts are parsed, in order."""
    seen: list[str] = []
    describe = extraction.describe_module

    def recording(rel: str, source: str) -> ModuleFacts:
        seen.append(rel)
        return describe(rel, source)

    monkeypatch.setattr(extraction, "describe_module", recording)
    return seen


FACADE = {
    "src/facade/__init__.py": """
        from core import Thing, define, mutable
        from core._impl import helper as assist

        from . import extras

        __all__ = ["Thing", "assist", "define", "extras", "mutable", "__version__"]
        """,
    "src/facade/extras.py": "from core.extras import *\n",
    "src/core/__init__.py": """
        from ._impl import Thing, define, helper

        mutable = define

        __all__ = ["Thing", "define", "helper", "mutable"]
        """,
    "src/core/_impl.py": '''
        def define(maybe_cls=None, *, frozen: bool = False):
            """Make a class from annotations.

            >>> define(int) is int
            True
            """
            return maybe_cls


        class Thing:
            """A thing with a size."""

            LIMIT = 10
            _cache = None

            def __init__(self, size: int) -> None:
                self.size = size

            def grow(self, by: int) -> None:
                """Grow by ``by``."""

            def _shrink(self) -> None:
                """Private."""


        def helper(x):
            return x
        ''',
    "src/core/extras.py": '''
        __all__ = ("pipe",)


        def pipe(*steps):
            """Chain steps."""


        def not_listed():
            """Not in __all__."""
        ''',
    "src/other/__init__.py": '''
        def unrelated():
            """Another package in src/."""
        ''',
}


def test_facade_over_a_sibling_package_gets_the_definitions_under_its_own_names(tmp_path: Path) -> None:
    surface = surface_of(make_repo(tmp_path / "repo", FACADE), "facade")
    define = surface.symbols["facade.define"]
    assert define["kind"] == "function" and define["path"] == "src/core/_impl.py"
    assert define["signature"] == "def define(maybe_cls=None, *, frozen: bool=False): ..."
    assert define["params"] == ["maybe_cls", "frozen"] and define["summary"] == "Make a class from annotations."
    # `mutable = define` in the sibling package is an alias, here of the definition's canonical name.
    assert surface.symbols["facade.mutable"] == {
        "kind": "alias",
        "path": "src/facade/__init__.py",
        "alias_of": "facade.define",
    }
    assert surface.symbols["facade.Thing.grow"]["kind"] == "method"
    assert surface.symbols["facade.Thing.LIMIT"] == {"kind": "attribute", "path": "src/core/_impl.py"}
    assert surface.symbols["facade.extras"] == {"kind": "module", "path": "src/facade/extras.py"}
    assert surface.symbols["facade.extras.pipe"]["path"] == "src/core/extras.py"
    # Private implementation paths, other packages in src/ and dunder metadata are not the facade's API.
    assert not [name for name in surface.symbols if not name.startswith("facade")]
    assert not [name for name in surface.symbols if "._" in name or name.endswith("not_listed")]

    api = api_units(surface)
    assert sorted(api) == [
        "facade.Thing",
        "facade.Thing.grow",
        "facade.assist",
        "facade.define",
        "facade.extras.pipe",
    ]
    assert api["facade.define"].path == "src/core/_impl.py"
    assert api["facade.define"].text.startswith("Make a class from annotations.")
    assert api["facade.define"].examples == ("define(int) is int",)
    assert api["facade.Thing"].signature == "class Thing:\n    def __init__(self, size: int) -> None: ..."
    assert api["facade.Thing"].params == ("size",)
    # One unit per definition although `define` is exported as define and mutable, from two packages.
    assert len([u for u in surface.units if u.kind == "api"]) == len(api)
    assert surface.unresolved == {}


def test_private_modules_star_imports_and_aliases_by_assignment(tmp_path: Path) -> None:
    tree = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": """
                from functools import partial
                from ._iter import *
                from .funcs import *

                comp = compose
                LIMIT = 3
                """,
            "pkg/_iter.py": '''
                __all__ = ("take", "drop")


                def take(n, seq):
                    """Take the first n."""


                def drop(n: int, seq) -> list:
                    return list(seq)[n:]


                def not_listed():
                    """Not in __all__."""
                ''',
            "pkg/funcs.py": '''
                import os

                from ._iter import take


                def compose(*funcs):
                    """Compose functions."""


                def _private():
                    """Private."""
                ''',
        },
    )
    surface = surface_of(tree, "pkg")
    symbols = surface.symbols
    # Defined in a private module: the shortest public path that exports it is the canonical name.
    assert symbols["pkg.take"]["kind"] == "function" and symbols["pkg.take"]["path"] == "pkg/_iter.py"
    assert symbols["pkg.funcs.take"] == {"kind": "alias", "path": "pkg/funcs.py", "alias_of": "pkg.take"}
    # Defined in a public module: its own path is canonical, re-exports and `comp = compose` are aliases.
    assert symbols["pkg.funcs.compose"]["kind"] == "function"
    assert symbols["pkg.compose"] == {"kind": "alias", "path": "pkg/__init__.py", "alias_of": "pkg.funcs.compose"}
    assert symbols["pkg.comp"] == {"kind": "alias", "path": "pkg/__init__.py", "alias_of": "pkg.funcs.compose"}
    assert symbols["pkg.LIMIT"] == {"kind": "attribute", "path": "pkg/__init__.py"}
    # Names from the stdlib are not the library's API; neither are private names or names outside __all__.
    for absent in ("pkg.partial", "pkg.funcs.os", "pkg.funcs._private", "pkg.not_listed", "pkg._iter"):
        assert absent not in symbols
    # A symbol without a docstring still gets an API unit, for its signature facts.
    drop = api_units(surface)["pkg.drop"]
    assert drop.text == "" and drop.signature == "def drop(n: int, seq) -> list: ..." and drop.params == ("n", "seq")
    assert sorted(api_units(surface)) == ["pkg.drop", "pkg.funcs.compose", "pkg.take"]


def test_all_built_from_other_modules_all(tmp_path: Path) -> None:
    tree = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": """
                from . import a, b
                from .a import *
                from .b import *
                from .c import gamma

                LIMIT = 3
                delta = gamma
                hidden = 1

                __all__ = [*a.__all__] + b.__all__
                __all__ += ["gamma"]
                __all__.extend(["LIMIT"])
                __all__.append("delta")
                """,
            "pkg/a.py": '''
                __all__ = ["alpha"]


                def alpha():
                    """Alpha."""


                def alpha_helper():
                    """Not listed."""
                ''',
            "pkg/b.py": '''
                __all__ = ["Beta"]


                class Beta:
                    """Beta."""
                ''',
            "pkg/c.py": '''
                def gamma():
                    """Gamma."""
                ''',
        },
    )
    symbols = surface_of(tree, "pkg").symbols
    top_level = {name: info["kind"] for name, info in symbols.items() if name.count(".") == 1}
    assert top_level == {
        "pkg.a": "module",
        "pkg.b": "module",
        "pkg.c": "module",
        "pkg.alpha": "alias",
        "pkg.Beta": "alias",
        "pkg.gamma": "alias",
        "pkg.LIMIT": "attribute",
        "pkg.delta": "alias",
    }
    assert symbols["pkg.delta"]["alias_of"] == "pkg.c.gamma" and symbols["pkg.Beta"]["alias_of"] == "pkg.b.Beta"


def test_unresolvable_re_exports_are_reported_and_the_build_goes_on(tmp_path: Path) -> None:
    tree = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": """
                import missing_dependency
                from json import dumps

                from ._speedups import escape
                from .core import nosuch, real

                try:
                    from ._fast import quick
                except ImportError:
                    from .core import quick
                """,
            "pkg/core.py": '''
                def real():
                    """Real."""


                def quick():
                    """Quick, in pure Python."""
                ''',
            "pkg/listing.py": '__all__ = ["ghost"]\n',
            "pkg/stars.py": "from ._native import *\n",
        },
    )
    surface = surface_of(tree, "pkg")
    assert surface.unresolved == {
        "pkg.escape": "from ._speedups import escape: module pkg._speedups is not in the repository "
        "(a compiled extension without a .pyi stub?)",
        "pkg.nosuch": "from .core import nosuch: pkg.core does not define nosuch",
        "pkg.listing.ghost": "__all__ of pkg.listing lists ghost, which pkg.listing does not define",
        "pkg.stars.*": "from ._native import *: module pkg._native is not in the repository "
        "(a compiled extension without a .pyi stub?)",
    }
    # A compiled module's name exists at run time, a name the source does not define does not.
    assert surface.symbols["pkg.escape"] == {"kind": "attribute", "path": "pkg/__init__.py"}
    assert "pkg.nosuch" not in surface.symbols
    # The pure-Python fallback of a try/except import resolves.
    assert surface.symbols["pkg.quick"]["alias_of"] == "pkg.core.quick"
    assert sorted(api_units(surface)) == ["pkg.core.quick", "pkg.core.real"]


def test_import_cycles_and_endless_chains_are_tolerated(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from .a import x\n",
        "pkg/a.py": "from .b import x\n",
        "pkg/b.py": "from .a import x\n",
        "pkg/s1.py": "from .s2 import *\n\n\ndef one():\n    pass\n",
        "pkg/s2.py": "from .s1 import *\n\n\ndef two():\n    pass\n",
        "pkg/self.py": "same = same\n",
    }
    hops = MAX_HOPS + 5
    files |= {f"pkg/chain{i}.py": f"from .chain{i + 1} import far\n" for i in range(hops)}
    files[f"pkg/chain{hops}.py"] = "def far():\n    pass\n"
    surface = surface_of(make_repo(tmp_path / "repo", files), "pkg")
    assert "import cycle" in surface.unresolved["pkg.x"]
    assert surface.symbols["pkg.s1.two"] == {"kind": "alias", "path": "pkg/s1.py", "alias_of": "pkg.s2.two"}
    assert surface.symbols["pkg.self.same"] == {"kind": "attribute", "path": "pkg/self.py"}
    assert "longer than" in surface.unresolved["pkg.chain0.far"]
    assert surface.symbols[f"pkg.chain{hops - 1}.far"]["alias_of"] == f"pkg.chain{hops}.far"


def test_a_stub_only_module_is_read_from_its_pyi(tmp_path: Path, parsed: list[str]) -> None:
    tree = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": "from ._native import Native, fast\nfrom .both import dual\n",
            "pkg/_native.pyi": '''
                def fast(x: int) -> int:
                    """Fast, in C."""

                class Native:
                    def run(self, times: int) -> None: ...
                ''',
            "pkg/both.py": 'def dual(a):\n    """From the source."""\n',
            "pkg/both.pyi": "def dual(a: int) -> str: ...\n",
        },
    )
    surface = surface_of(tree, "pkg")
    assert surface.symbols["pkg.fast"]["path"] == "pkg/_native.pyi"
    assert surface.symbols["pkg.fast"]["signature"] == "def fast(x: int) -> int: ..."
    assert surface.symbols["pkg.Native.run"]["params"] == ["times"]
    assert surface.symbols["pkg.both.dual"]["signature"] == "def dual(a): ..."
    assert "pkg/both.pyi" not in parsed and surface.unresolved == {}


def test_parser_failures_skip_the_file_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": "from .hostile import bomb\nfrom .fine import ok\n",
            "pkg/hostile.py": "def bomb():\n    pass\n",
            "pkg/nested.py": "x = " + "-" * 300_000 + "1\n",  # ast.parse runs out of memory
            "pkg/long_sum.py": "x = 1" + "+1" * 200_000 + "\n",  # and out of recursion
            "pkg/deep.py": "x = 1" + "+1" * 400 + "\n",  # parses, but later recursive passes would not survive it
            "pkg/broken.py": "def oops(:\n",
            "pkg/fine.py": 'def ok():\n    """Fine."""\n',
        },
    )
    parse = ast.parse

    def failing_parse(source: str, filename: str = "<unknown>", **kwargs: Any) -> ast.AST:
        if filename == "pkg/hostile.py":
            raise MemoryError
        return parse(source, filename, **kwargs)

    monkeypatch.setattr(ast, "parse", failing_parse)
    surface = surface_of(tree, "pkg")
    assert surface.skipped == {
        "pkg/broken.py": "Python does not parse: line 1: invalid syntax",
        "pkg/deep.py": "Python does not parse: RecursionError: code nested more than 150 levels deep (line 1)",
        "pkg/hostile.py": "Python does not parse: MemoryError",
        "pkg/long_sum.py": surface.skipped["pkg/long_sum.py"],
        "pkg/nested.py": "Python does not parse: MemoryError",
    }
    assert surface.skipped["pkg/long_sum.py"].startswith("Python does not parse: RecursionError: maximum recursion")
    assert surface.unresolved == {
        "pkg.bomb": "from .hostile import bomb: pkg/hostile.py is skipped, so it cannot be read",
    }
    assert list(api_units(surface)) == ["pkg.fine.ok"]


def test_unreachable_modules_are_never_parsed(tmp_path: Path, parsed: list[str]) -> None:
    tree = make_repo(
        tmp_path / "repo",
        {
            "src/pkg/__init__.py": "from sibling import util\nfrom ._impl import run\n",
            "src/pkg/_impl.py": 'import sibling.deep\n\n\ndef run():\n    """Run."""\n',
            "src/sibling/__init__.py": 'def util():\n    """Util."""\n',
            "src/sibling/deep.py": "VALUE = 1\n",
            "src/sibling/unused.py": "def oops(:\n",
            "src/other/__init__.py": "def oops(:\n",
            "scripts/tool.py": "import pkg\n",
            "tests/helpers.py": "def helper():\n    pass\n",
            "tests/test_pkg.py": "def test_run():\n    assert True\n",
        },
    )
    surface = surface_of(tree, "pkg")
    assert sorted(parsed) == [
        "src/pkg/__init__.py",
        "src/pkg/_impl.py",
        "src/sibling/__init__.py",
        "src/sibling/deep.py",
    ]
    assert surface.skipped == {}
    assert sorted(api_units(surface)) == ["pkg.run", "pkg.util"]
    assert [u.title for u in surface.units if u.kind == "example"] == ["run"]


def test_module_facts_are_cached_per_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_repo(tmp_path / "repo", FACADE)
    first = surface_of(tree, "facade", cache=tmp_path / "cache")

    def no_parsing(rel: str, source: str) -> ModuleFacts:
        raise AssertionError(f"{rel} was parsed again")

    monkeypatch.setattr(extraction, "describe_module", no_parsing)
    again = surface_of(tree, "facade", cache=tmp_path / "cache")
    assert again.units == first.units and again.symbols == first.symbols


def test_the_demo_library_keeps_its_symbols_and_units(demo_repo: Path) -> None:
    surface = surface_of(demo_repo, "ledgerkite")
    api = api_units(surface)
    assert len(api) >= 15
    nibble = api["ledgerkite.envelopes.nibble"]
    assert nibble.signature.startswith("def nibble(envelope: Envelope, amount: int")
    assert "allow_overdraw" in nibble.params and nibble.path == "ledgerkite/envelopes.py"
    assert "digest_for_month" in api["ledgerkite.reports.monthly_digest"].deprecated
    assert not any(name.split(".")[-1].startswith("_") for name in api)
    assert surface.symbols["ledgerkite.nibble"] == {
        "kind": "alias",
        "path": "ledgerkite/__init__.py",
        "alias_of": "ledgerkite.envelopes.nibble",
    }
    assert surface.symbols["ledgerkite.rules.Verdict.VETO"]["kind"] == "attribute"
    # Every re-export in the package's __all__ (built from its modules' __all__) reaches a definition.
    aliases = {name: info["alias_of"] for name, info in surface.symbols.items() if info["kind"] == "alias"}
    assert len(aliases) >= 20
    assert all(surface.symbols[target]["kind"] in ("function", "class") for target in aliases.values())
    assert surface.unresolved == {} and surface.skipped == {}
    assert len({u.key for u in surface.units}) == len(surface.units)

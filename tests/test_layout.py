"""The house rules of the package, checked on its source: small modules, imports where a reader expects them,
stages that meet through artefacts, and a wheel that ships every file the package reads."""

import ast
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "include" / "doctune"
MAX_LINES = 400
# The DAG parser and the CLI import the package; these take seconds to import, so only the code that uses them does.
HEAVY = {
    "accelerate",
    "bitsandbytes",
    "datasets",
    "langchain",
    "langchain_core",
    "langchain_openai",
    "langchain_text_splitters",
    "peft",
    "tensorboard",
    "torch",
    "transformers",
    "trl",
    "unsloth",
    "vllm",
}
STAGES = ("sources", "corpus", "train", "evaluate", "serve")
# What every stage may use: the shared parts, none of which is a stage.
SHARED = {"answer_loss", "base_models", "config", "errors", "names", "reader", "registry", "sandbox", "secrets"}
# The only places one stage reads another's code, each for a reason; everything else meets through the registry
# and the version folders.
CROSSINGS = {
    ("corpus", "evaluate.suite"): "a dataset version's evaluation suite is mined and validated by the corpus build",
    ("evaluate", "serve"): "the gate asks candidate, production and base through the vLLM server",
}


def modules(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def package_of(path: Path) -> str:
    """``doctune.evaluate.suite.mining`` -> ``evaluate.suite``: the module's package below doctune."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if len(parts) > 1 else ""


def imports(tree: ast.Module) -> Iterator[tuple[str, str]]:
    """Every imported name, dotted (``from a.b import c`` is ``a.b.c``), with where it is imported: ``top`` (runs when
    the module is imported), ``typing`` (under ``if TYPE_CHECKING``, for annotations only) or ``function``."""

    def walk(node: ast.AST, where: str) -> Iterator[tuple[str, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                yield from ((alias.name, where) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield from ((f"{child.module}.{alias.name}", where) for alias in child.names)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, "function")
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test) and where == "top":
                yield from walk(child, "typing")
            else:
                yield from walk(child, where)

    yield from walk(tree, "top")


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    too_long = {
        str(path.relative_to(REPO)): lines
        for path in modules(PACKAGE, REPO / "operators", REPO / "dags", REPO / "demo")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"split these modules (at most {MAX_LINES} lines each)"


def test_heavy_libraries_are_imported_only_by_the_code_that_uses_them() -> None:
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for path in modules(PACKAGE, REPO / "operators", REPO / "dags")
        for name, where in imports(parsed(path))
        if where == "top" and name.split(".")[0] in HEAVY
    ]
    assert found == [], "move these imports into the functions that need them (DAG parsing and the CLI import these)"


def test_the_package_imports_its_own_modules_at_the_top() -> None:
    """The CLI is the exception: each command imports its stage, so `doctune --help` does not load them all."""
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for path in modules(PACKAGE)
        if package_of(path) != "cli"
        for name, where in imports(parsed(path))
        if where == "function" and name.split(".")[0] == "doctune"
    ]
    assert found == [], "import these at the top of the module (a cycle is a structure to fix, not to hide)"


def test_stages_import_only_the_shared_parts_and_the_named_crossings() -> None:
    found = []
    for path in modules(*(PACKAGE / stage for stage in STAGES)):
        here = package_of(path)
        for name, where in imports(parsed(path)):
            target = name.removeprefix("doctune.")
            if (
                where != "top"
                or not name.startswith("doctune.")
                or target.split(".")[0] in {*SHARED, here.split(".")[0]}
            ):
                continue
            if not any(within(here, source) and within(target, destination) for source, destination in CROSSINGS):
                found.append(f"{path.relative_to(REPO)}: {name}")
    assert found == [], "stages meet through the registry and version folders: read the artefact instead"


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.slow
def test_every_module_imports_on_its_own() -> None:
    """Each module imported first, in a fresh package: an import cycle shows up whichever module starts it."""
    names = [
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in modules(PACKAGE)
        if "migrations" not in path.parts and path.name != "__main__.py"
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE.parent), str(REPO)])}
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "import_each.py"), *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert len(names) > 50
    assert done.stdout.strip() == ""


def test_the_wheel_ships_every_file_of_the_package(tmp_path: Path) -> None:
    """Built from the tracked files, as an image build sees them: a sub-package or data file missing from pyproject's
    lists works in this checkout (an editable install) and fails only in the installed image."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "include/doctune", "operators", "pyproject.toml", "README.md"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    source = tmp_path / "source"
    for name in filter(None, (entry.decode() for entry in tracked)):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("doctune-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(Path(name).relative_to("include")) if name.startswith("include/") else name
        for name in filter(None, (entry.decode() for entry in tracked))
        if name.startswith(("include/doctune/", "operators/"))
    }
    assert len(expected) > 100
    assert sorted(expected - shipped) == [], "add these to [tool.setuptools] packages or package-data in pyproject.toml"

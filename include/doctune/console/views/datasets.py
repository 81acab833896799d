"""The datasets pages: a library's dataset versions with their quality reports, one version's pairs (kept and
rejected, filtered), and the diff of two versions with the API change and its probes' answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from doctune.console import data
from doctune.console.context import ConsoleContext, context_of
from doctune.console.views.pages import page, pick_library
from doctune.errors import DoctuneError


async def datasets_page(request: Request) -> Response:
    library = pick_library(request)
    versions = data.dataset_versions(context_of(request).registry(), library.name) if library else []
    return page(request, "datasets.html", library=library, versions=versions)


def _dataset(context: ConsoleContext, library: str, version: str) -> Any:
    if not version.isdigit():
        raise DoctuneError(f"dataset version must be a number, not {version!r}")
    return context.registry().dataset(library, int(version))


async def dataset_page(request: Request) -> Response:
    library = pick_library(request, request.path_params["library"])
    assert library is not None
    dataset = _dataset(context_of(request), library.name, request.path_params["version"])
    q = request.query_params
    offset = int(q.get("offset", "0")) if q.get("offset", "0").isdigit() else 0
    pairs = data.browse_pairs(
        dataset.path,
        split=q.get("split", ""),
        path=q.get("path", ""),
        unit=q.get("unit", ""),
        text=q.get("q", ""),
        offset=offset,
    )
    filters = {k: q.get(k, "") for k in ("split", "path", "unit", "q")}
    return page(
        request,
        "dataset.html",
        library=library,
        dataset=dataset,
        report=data.read_json(Path(dataset.path) / "report.json") or {},
        manifest=data.read_json(Path(dataset.path) / "manifest.json") or {},
        pairs=pairs,
        offset=offset,
        filters=filters,
        query=lambda **changes: urlencode({k: v for k, v in ({**filters, **changes}).items() if v}),
    )


async def diff_page(request: Request) -> Response:
    context = context_of(request)
    library = pick_library(request, request.path_params["library"])
    assert library is not None
    q = request.query_params
    versions = [d.version for d in context.registry().datasets(library.name)]
    if len(versions) < 2:
        raise DoctuneError(f"{library.name} has {len(versions)} dataset version(s): a diff needs two")
    old = _dataset(context, library.name, q.get("old") or str(versions[-2]))
    new = _dataset(context, library.name, q.get("new") or str(versions[-1]))
    diff = await run_in_threadpool(data.dataset_diff, old.path, new.path)
    api = await run_in_threadpool(data.api_change, context.settings, context.registry(), library.name, new)
    return page(request, "diff.html", library=library, old=old, new=new, diff=diff, versions=versions, api=api)

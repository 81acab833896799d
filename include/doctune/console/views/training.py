"""The training pages: a library's runs and the start form (TrainParams, prefilled with its configuration),
start and stop; one run's page with its checkpoints, resume, and its live curves from TensorBoard event files."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from doctune.config import LibraryConfig, TrainParams, get_library, train_form, validation_messages
from doctune.console import data
from doctune.console.context import ConsoleContext, context_of
from doctune.console.train_form import parse_train_form, train_form_fields
from doctune.console.views.actions import answered
from doctune.console.views.pages import page, pick_library, safe_next
from doctune.errors import DoctuneError
from doctune.names import RunStatus
from doctune.train import request_stop


def form_fields(context: ConsoleContext, library: LibraryConfig) -> set[str] | None:
    """Through Airflow, the retrain DAG's form decides which parameters a run takes; locally, all of them."""
    return set(train_form(library)) if context.airflow else None


def start(
    context: ConsoleContext, library: LibraryConfig, params: TrainParams, dataset_version: int | None, what: str
) -> str:
    if context.airflow is None:
        launch = context.launcher.train(library.name, params, dataset_version, what)
        return f"{what}: `doctune train run` in the background (process {launch.process.pid})"
    only = form_fields(context, library) or set()
    conf = {k: v for k, v in params.model_dump().items() if k in only}
    run_id = context.airflow.trigger(f"doctune_retrain__{library.name}", conf)
    return f"{what}: Airflow run {run_id} of doctune_retrain__{library.name} (it trains on the GPU worker)"


async def training_page(request: Request, form_error: list[str] | None = None, values: Any = None) -> Response:
    context = context_of(request)
    library = pick_library(request, request.path_params.get("library"))
    runs = list(reversed(context.registry().runs(library.name))) if library else []
    datasets = [d.version for d in context.registry().datasets(library.name)] if library else []
    fields = train_form_fields(library.train, form_fields(context, library)) if library else []
    if values is not None:
        for spec in fields:
            if spec.name in values:
                spec.value = values[spec.name]
    return page(
        request,
        "training.html",
        status=400 if form_error else 200,
        library=library,
        runs=runs,
        datasets=datasets,
        fields=fields,
        form_errors=form_error or [],
        launches=context.launcher.recent(library.name) if library else [],
        through_airflow=context.airflow is not None,
    )


async def training_start(request: Request) -> Response:
    context = context_of(request)
    library = get_library(context.settings, request.path_params["library"])
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        params = parse_train_form(form, library.train, form_fields(context, library))
    except ValidationError as exc:
        return await training_page(request, validation_messages(exc), form)
    version = form.get("dataset_version", "")
    dataset_version = int(version) if version.isdigit() else None
    started = await run_in_threadpool(start, context, library, params, dataset_version, "training started")
    return answered(request, "train", f"/training/{library.name}", ok=f"{started} with {params.model_dump()}")


async def training_stop(request: Request) -> Response:
    settings = context_of(request).settings
    library = get_library(settings, request.path_params["library"])
    requested = await run_in_threadpool(request_stop, settings, library.name)
    back = str((await request.form()).get("back") or f"/training/{library.name}")
    if not requested:
        return answered(request, "stop", safe_next(back), error=f"no training of {library.name} is running")
    return answered(
        request,
        "stop",
        safe_next(back),
        ok=f"stop requested for {len(requested)} training(s): it saves a checkpoint after the current step",
    )


def _run(request: Request) -> Any:
    run_id = request.path_params["run_id"]
    try:
        return context_of(request).registry().run(int(run_id))
    except Exception as exc:  # NoResultFound
        raise DoctuneError(f"training run {run_id} is not registered") from exc


async def run_resume(request: Request) -> Response:
    context = context_of(request)
    run = _run(request)
    if run.status in (RunStatus.RUNNING, RunStatus.SUCCEEDED):
        raise DoctuneError(f"run {run.id} is {run.status}: only a stopped, interrupted or failed run resumes")
    params = TrainParams.model_validate(run.params)
    library = get_library(context.settings, run.library)
    started = await run_in_threadpool(start, context, library, params, run.dataset_version, f"resuming run {run.id}")
    return answered(
        request,
        "resume",
        f"/training/{run.library}",
        ok=f"{started}; it continues from the last checkpoint",
        library=run.library,
    )


async def run_page(request: Request) -> Response:
    run = _run(request)
    return page(
        request,
        "run.html",
        run=run,
        library=pick_library(request, run.library),
        checkpoints=data.checkpoints(run),
        tensorboard=f"{context_of(request).console.tensorboard_url.rstrip('/')}/?"
        + urlencode({"regexInput": f"{run.library}/{Path(run.output_dir).name}"}),
    )


async def run_scalars(request: Request) -> Response:
    run = _run(request)
    series = await run_in_threadpool(data.scalars, data.tensorboard_dir(context_of(request).settings, run))
    return JSONResponse(
        {
            "run": run.id,
            "status": run.status,
            "steps": run.steps,
            "checkpoints": data.checkpoints(run),
            "scalars": series,
        }
    )

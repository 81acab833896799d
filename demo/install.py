"""``python -m demo.install``: the bundled demo library installed into a doctune deployment, so that a stack
without a GPU has a library to retrain from its first start (the ``demo-init`` service of docker-compose.cpu.yaml).

Its git repository goes under ``DOCTUNE_HOME`` (the stack's volume), its config into the libraries folder. A config
of that name already there is the user's, and is kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from demo.pipeline import demo_library
from demo.repo import DEMO_NAME, prepare_demo_repo
from doctune.cli.common import out, run_app, setup_logging
from doctune.config import Settings
from doctune.errors import DoctuneError

app = typer.Typer(add_completion=False)


def install(settings: Settings, base_model: str) -> Path:
    """The demo repository (made once) and its config (written unless one exists); returns the config's path."""
    # Made even when the config is kept: that config may be this demo's, from before the volume was emptied.
    repo = prepare_demo_repo(settings)
    folder = settings.libraries_path
    config = folder / f"{DEMO_NAME}.yaml"
    if config.exists():
        out.print(f"kept {config}: a config of that name is there already (delete it for the demo's)")
        return config
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise DoctuneError(
            f"the libraries folder {folder} is not writable by UID {os.getuid()}: in compose, set AIRFLOW_UID to "
            "the owner of ./libraries in .env (`echo AIRFLOW_UID=$(id -u) >> .env`), or `chown` the folder"
        )
    demo_library(settings, repo, base_model)
    out.print(f"wrote {config}: the demo library {DEMO_NAME} on {base_model}, from {repo.as_uri()}")
    return config


@app.command()
def main(
    base_model: Annotated[
        str, typer.Option(envvar="DOCTUNE_BASE_MODEL", help="Base model of the demo library (the one vLLM serves).")
    ] = "tiny-llama",
) -> None:
    """Install the bundled demo library: its git repository under DOCTUNE_HOME, its config in the libraries folder."""
    setup_logging(False)
    install(Settings(), base_model)


if __name__ == "__main__":
    run_app(app)

"""The doctune console in Airflow's navigation: an external view, registered through the ``airflow.plugins``
entry point (pyproject.toml), so no file goes into a plugins folder."""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin


class DoctunePlugin(AirflowPlugin):
    name = "doctune"
    # Where browsers reach the console: in compose, the host's published port 8200.
    external_views = [
        {
            "name": "doctune console",
            "href": os.environ.get("DOCTUNE_CONSOLE_PUBLIC_URL", "http://localhost:8200"),
            "destination": "nav",
            "category": "doctune",
        }
    ]

"""Run by ``pipeline.parse_dag_file`` in a fresh interpreter: ``dag_parse_probe.py DAG_FILE MODULE...`` imports the
DAG file and prints, as one JSON line, the seconds it took and which of the named modules it pulled in."""

import importlib.util
import json
import sys
import time

# Airflow itself is loaded before a dag-processor parses a file, so only the file's own cost is timed.
import airflow.sdk  # noqa: F401

started = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "heavy": [m for m in sys.argv[2:] if m in sys.modules]}))

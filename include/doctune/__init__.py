"""doctune: keep a coding LLM fluent in a private library.

The stages (sources -> corpus -> train -> evaluate -> serve) are plain functions here; the CLI and the
Airflow operators are thin wrappers over them.
"""

__version__ = "0.1.0"

#!/usr/bin/env bash
# The official Airflow image's entrypoint contract, without its extras: no arguments opens a shell, `bash ...` and
# `python ...` run as given, anything else is an Airflow subcommand (`api-server`, `celery worker ...`). Services
# that run another program set their own entrypoint, as docker-compose.yaml does for the gateway. Waiting for the
# database is left to compose's health checks.
set -euo pipefail
case "${1:-bash}" in
    bash | python) exec "${@:-bash}" ;;
    airflow) shift ;;
esac
exec airflow "$@"

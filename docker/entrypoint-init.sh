#!/usr/bin/env bash
# One-shot initialisation of the doctune compose stack (the `airflow-init`
# service). Baked into the image as /usr/local/bin/doctune-init and started
# through the Airflow image entrypoint (`command: [bash, /usr/local/bin/doctune-init]`),
# which has already waited for the metadata database and set up PATH/PYTHONPATH.
# Runs as root (like the official docker-compose init) so that it can fix the
# ownership of the shared volumes; everything it does is idempotent.
set -euo pipefail

log() { echo "[doctune-init] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -z "${AIRFLOW_UID:-}" ]]; then
    log "WARNING: AIRFLOW_UID is not set; files will be owned by UID 50000."
    log "         On Linux put AIRFLOW_UID=\$(id -u) in .env (see .env.example)."
fi
AIRFLOW_UID="${AIRFLOW_UID:-50000}"
DOCTUNE_HOME="${DOCTUNE_HOME:-/opt/doctune}"

# --- 1. secrets shared by every Airflow component -----------------------------
[[ -n "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ]] || die "AIRFLOW__API_AUTH__JWT_SECRET is empty (set AIRFLOW_JWT_SECRET in .env)"
[[ "${AIRFLOW__API_AUTH__JWT_SECRET}" != CHANGE_ME* ]] \
    || die "AIRFLOW_JWT_SECRET in .env is still the placeholder; generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
python - <<'PY' || die "AIRFLOW_FERNET_KEY in .env is not a valid Fernet key; generate one: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
import os
from cryptography.fernet import Fernet

Fernet(os.environ["AIRFLOW__CORE__FERNET_KEY"].encode())
PY
[[ -n "${DOCTUNE_VLLM_API_KEY:-}" && "${DOCTUNE_VLLM_API_KEY}" != CHANGE_ME* ]] \
    || die "VLLM_API_KEY in .env is empty or the placeholder; generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
[[ -n "${DOCTUNE_GATEWAY_API_KEYS:-}" && "${DOCTUNE_GATEWAY_API_KEYS}" != *CHANGE_ME* ]] \
    || die "DOCTUNE_GATEWAY_API_KEYS in .env is empty or a placeholder; generate client keys: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
[[ -n "${_AIRFLOW_WWW_USER_PASSWORD:-}" && "${_AIRFLOW_WWW_USER_PASSWORD}" != CHANGE_ME* ]] \
    || die "_AIRFLOW_WWW_USER_PASSWORD in .env is empty or the placeholder; choose the Airflow admin password"

# --- 2. folders on the shared volumes ----------------------------------------
mkdir -p /opt/airflow/logs /opt/airflow/dags
for sub in datasets adapters checkpoints workspaces tensorboard hf-cache; do
    mkdir -p "${DOCTUNE_HOME}/${sub}"
done

# --- 3. Airflow metadata database and admin user -------------------------------
log "Airflow $(airflow version)"
log "Migrating the Airflow metadata database"
airflow db migrate

log "Creating the admin user ${_AIRFLOW_WWW_USER_USERNAME:-airflow} (kept if it exists)"
airflow users create \
    --username "${_AIRFLOW_WWW_USER_USERNAME:-airflow}" \
    --password "${_AIRFLOW_WWW_USER_PASSWORD:-airflow}" \
    --firstname Airflow --lastname Admin \
    --email "${_AIRFLOW_WWW_USER_EMAIL:-airflowadmin@example.com}" \
    --role Admin \
    || log "WARNING: could not create the admin user (it may already exist)"

# --- 4. pools used by the doctune DAGs (doctune.stack) -------------------------
# The doctune_vllm Connection comes from AIRFLOW_CONN_DOCTUNE_VLLM in every
# component's environment, so there is nothing to store for it.
doctune stack init

# --- 5. doctune registry database ----------------------------------------------
# postgres creates it on first start (docker-entrypoint-initdb.d); create it
# here too for a postgres volume that predates the doctune stack.
if [[ "${DOCTUNE_DATABASE_URL:-}" == postgresql* ]]; then
    python - <<'PY'
import os

import sqlalchemy as sa
from sqlalchemy.engine import make_url

url = make_url(os.environ["DOCTUNE_DATABASE_URL"])
name = url.database
admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with admin.connect() as conn:
    exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
    if not exists:
        print(f"[doctune-init] creating database {name}", flush=True)
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
admin.dispose()
PY
fi
log "Migrating the doctune registry"
doctune db upgrade

# --- 6. ownership: containers run as AIRFLOW_UID with GID 0 -----------------------
log "Giving ${DOCTUNE_HOME} and /opt/airflow/logs to ${AIRFLOW_UID}:0"
chown "${AIRFLOW_UID}:0" "${DOCTUNE_HOME}"
chmod g+rwx "${DOCTUNE_HOME}"
for sub in datasets adapters checkpoints workspaces tensorboard hf-cache; do
    chown -R "${AIRFLOW_UID}:0" "${DOCTUNE_HOME}/${sub}"
    chmod -R g+rwX "${DOCTUNE_HOME}/${sub}"
done
chown -R "${AIRFLOW_UID}:0" /opt/airflow/logs
chmod -R g+rwX /opt/airflow/logs

log "done"

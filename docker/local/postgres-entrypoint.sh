#!/usr/bin/env bash
# The official postgres image's first-start contract, in short: an empty PGDATA gets a UTF-8 cluster owned by
# POSTGRES_USER (password auth over TCP), the POSTGRES_DB database and the initdb.d SQL files; then the server
# runs in the foreground as the postgres user, so `docker stop` shuts it down cleanly.
set -euo pipefail
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=${POSTGRES_USER}}"
[[ -n "${POSTGRES_PASSWORD:-}" ]] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
mkdir -p "${PGDATA}"
chown -R postgres:postgres "${PGDATA}"
chmod 0700 "${PGDATA}"
as_postgres() { runuser -u postgres -- "$@"; }
if [[ ! -s "${PGDATA}/PG_VERSION" ]]; then
    pwfile="$(mktemp)"
    echo "${POSTGRES_PASSWORD}" > "${pwfile}"
    chown postgres "${pwfile}"
    as_postgres initdb --username="${POSTGRES_USER}" --pwfile="${pwfile}" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 -D "${PGDATA}" > /dev/null
    rm -f "${pwfile}"
    echo "host all all all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
    as_postgres pg_ctl -D "${PGDATA}" -o "-c listen_addresses=''" -w start > /dev/null
    if [[ "${POSTGRES_DB}" != postgres ]]; then
        as_postgres psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
            -c "CREATE DATABASE \"${POSTGRES_DB}\""
    fi
    for sql in /docker-entrypoint-initdb.d/*.sql; do
        [[ -e "${sql}" ]] || continue
        echo "running ${sql}"
        as_postgres psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" -f "${sql}"
    done
    as_postgres pg_ctl -D "${PGDATA}" -m fast -w stop > /dev/null
fi
if [[ "${1:-}" == postgres ]]; then
    shift
    exec runuser -u postgres -- postgres -D "${PGDATA}" "$@"
fi
exec "$@"

# A stand-in for the official postgres image on a host that cannot pull it: Debian's PostgreSQL 15 with the same
# contract (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA at /var/lib/postgresql/data, SQL files in
# /docker-entrypoint-initdb.d run on the first start of an empty volume, PGPORT honoured, pg_isready on PATH).
FROM doctune-local/debian:bookworm

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql \
    && chown postgres:postgres /var/run/postgresql

ENV PATH=/usr/lib/postgresql/15/bin:${PATH} \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["bash", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]

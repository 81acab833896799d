# A stand-in for apache/airflow:<version>-python3.11 on a host that cannot pull it (no registry reachable): the
# same user (airflow, UID 50000, GID 0), paths (AIRFLOW_HOME=/opt/airflow, packages under /home/airflow/.local),
# entrypoint contract (an Airflow subcommand runs as `airflow ...`; bash, python and other programs run as given)
# and Python minor version, on a Debian made from Debian's own packages by docker/local-images.sh. Airflow itself
# is not preinstalled: the doctune Dockerfiles install it explicitly, so they build on either base.
FROM doctune-local/debian:bookworm

ARG AIRFLOW_VERSION=3.3.2
ENV AIRFLOW_VERSION=${AIRFLOW_VERSION} \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DUMB_INIT_SETSID=1

COPY airflow-entrypoint.sh /entrypoint
# One layer: the user, a virtual environment where the official image keeps its packages, and the folders.
RUN useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
    && mkdir -p /opt/airflow/dags /opt/airflow/logs \
    && python -m venv /home/airflow/.local \
    && chown -R airflow:0 /home/airflow /opt/airflow \
    && chmod -R g+rwX /home/airflow /opt/airflow \
    && chmod 0755 /entrypoint

USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []

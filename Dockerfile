# syntax=docker/dockerfile:1
# The doctune Airflow image: api-server, scheduler, dag-processor, triggerer, the `default` Celery worker,
# the gateway (`doctune gateway`) and TensorBoard. Training and evaluation run on the `gpu` queue, in the
# image from docker/gpu-worker.Dockerfile, so this one carries no torch.
# Follows the Airflow docker-stack docs: pip as the `airflow` user, apache-airflow pinned to the base image's.
FROM apache/airflow:3.3.2-python3.11

ENV DOCTUNE_HOME=/opt/doctune \
    DOCTUNE_LIBRARIES_DIR=/opt/doctune/libraries \
    DOCTUNE_TENSORBOARD_DIR=/opt/doctune/tensorboard

# The state root is group-writable: the Airflow image runs with an arbitrary UID and GID 0.
USER root
RUN mkdir -p /opt/doctune/libraries /opt/doctune-src \
    && chown -R airflow:0 /opt/doctune /opt/doctune-src \
    && chmod -R g+rwX /opt/doctune /opt/doctune-src
COPY --chmod=0755 docker/entrypoint-init.sh /usr/local/bin/doctune-init

USER airflow
WORKDIR /opt/doctune-src
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:0 include/doctune ./include/doctune
COPY --chown=airflow:0 operators ./operators
RUN pip install --no-cache-dir -c constraints.txt "apache-airflow==${AIRFLOW_VERSION}" ".[airflow]" \
    && doctune --help > /dev/null

WORKDIR /opt/airflow

# The doctune Airflow image: api-server, scheduler, dag-processor, triggerer, the `default` Celery worker,
# the gateway (`doctune gateway`) and TensorBoard. Training and evaluation run on the `gpu` queue, in the
# image from docker/gpu-worker.Dockerfile, so this one carries no torch.
# Follows the Airflow docker-stack docs: pip as the `airflow` user, apache-airflow pinned to the base image's.
# BASE_IMAGE is the official Airflow image; a host that cannot pull it builds a stand-in with the same user, paths
# and Python (docker/local-images.sh), and Airflow is installed explicitly so that either base works.
ARG BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${BASE_IMAGE}

# Where pip finds packages, for a build without the package index (docker/local-images.sh serves a wheelhouse);
# unset, pip uses the index as usual.
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX

ENV DOCTUNE_HOME=/opt/doctune \
    DOCTUNE_LIBRARIES_DIR=/opt/doctune/libraries \
    DOCTUNE_TENSORBOARD_DIR=/opt/doctune/tensorboard

# The state root is group-writable: the Airflow image runs with an arbitrary UID and GID 0.
USER root
COPY docker/entrypoint-init.sh /usr/local/bin/doctune-init
RUN chmod 0755 /usr/local/bin/doctune-init \
    && mkdir -p /opt/doctune/libraries /opt/doctune-src \
    && chown -R airflow:0 /opt/doctune /opt/doctune-src \
    && chmod -R g+rwX /opt/doctune /opt/doctune-src

USER airflow
WORKDIR /opt/doctune-src
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:0 include/doctune ./include/doctune
COPY --chown=airflow:0 operators ./operators
RUN pip install --no-cache-dir -c constraints.txt "apache-airflow==${AIRFLOW_VERSION}" ".[airflow,fab]" \
    && doctune --help > /dev/null

WORKDIR /opt/airflow

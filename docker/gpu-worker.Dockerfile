# syntax=docker/dockerfile:1
# The GPU worker: an Airflow Celery worker for the `gpu` queue (training, evaluation) with unsloth.
# unsloth pins its own torch (CUDA), transformers, trl, peft and datasets, so the ML stack is installed
# without constraints.txt, in a second step; the Airflow side uses the constraints like the main image.
# Build from the repository root: docker build -f docker/gpu-worker.Dockerfile .
FROM apache/airflow:3.3.2-python3.11

ARG UNSLOTH_VERSION=2026.10.9

ENV DOCTUNE_HOME=/opt/doctune \
    DOCTUNE_LIBRARIES_DIR=/opt/doctune/libraries \
    DOCTUNE_TENSORBOARD_DIR=/opt/doctune/tensorboard \
    DOCTUNE_TRAIN_BACKEND=auto \
    UNSLOTH_DISABLE_CPU_FALLBACK=1

USER root
# Triton (used by unsloth) compiles its CUDA launcher with a C compiler at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /opt/doctune/libraries /opt/doctune-src \
    && chown -R airflow:0 /opt/doctune /opt/doctune-src \
    && chmod -R g+rwX /opt/doctune /opt/doctune-src

USER airflow
WORKDIR /opt/doctune-src
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:0 include/doctune ./include/doctune
COPY --chown=airflow:0 operators ./operators
# The second install is pinned by unsloth's own exact pins, not by us (hence DL3013).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c constraints.txt "apache-airflow==${AIRFLOW_VERSION}" ".[airflow]" \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "unsloth==${UNSLOTH_VERSION}" \
        ".[train]" \
    && doctune --help > /dev/null

WORKDIR /opt/airflow

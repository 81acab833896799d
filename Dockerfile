# syntax=docker/dockerfile:1
#
# doctune image: Airflow 3.3.2 (api-server, scheduler, dag-processor, triggerer,
# the `default` Celery worker) plus the doctune package, its OpenAI-compatible
# gateway (`doctune gateway`) and TensorBoard. The GPU worker has its own image:
# docker/gpu-worker.Dockerfile.
#
# Follows https://airflow.apache.org/docs/docker-stack/build.html: packages are
# installed with pip as the `airflow` user, pinning apache-airflow to the
# version of the base image so that a dependency can never up/downgrade it.
FROM apache/airflow:3.3.2-python3.11

# Extras of the doctune distribution installed in this image.
ARG DOCTUNE_EXTRAS=airflow,train

ENV DOCTUNE_HOME=/opt/doctune \
    DOCTUNE_LIBRARIES_DIR=/opt/doctune/libraries \
    DOCTUNE_TENSORBOARD_DIR=/opt/doctune/tensorboard

# State/artefact root. Owned by airflow:0 and group-writable, as the Airflow
# image expects containers to run with an arbitrary UID and GID 0. A fresh
# named volume mounted on /opt/doctune is seeded with these folders.
USER root
RUN mkdir -p /opt/doctune/datasets /opt/doctune/adapters /opt/doctune/checkpoints \
        /opt/doctune/workspaces /opt/doctune/tensorboard /opt/doctune/libraries \
        /opt/doctune-src \
    && chown -R airflow:0 /opt/doctune /opt/doctune-src \
    && chmod -R g+rwX /opt/doctune /opt/doctune-src
# One-shot initialisation run by the `airflow-init` compose service.
COPY --chmod=0755 docker/entrypoint-init.sh /usr/local/bin/doctune-init

USER airflow
WORKDIR /opt/doctune-src

# Dependencies first (layer cached until pyproject.toml or constraints.txt
# change): list the requirements of the wanted extras straight from
# pyproject.toml (self-references such as "doctune[airflow]" are followed),
# then install them against the frozen constraints.
COPY --chown=airflow:0 pyproject.toml constraints.txt ./
RUN python -c "import re, sys, tomllib; \
p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
opt = p.get('optional-dependencies', {}); \
todo = [e.strip() for e in sys.argv[1].split(',') if e.strip()]; seen = set(); \
reqs = list(p.get('dependencies', [])); \
[todo.extend(x.strip() for x in m.group(1).split(',')) if m else reqs.append(d) \
 for e in todo if e not in seen and not seen.add(e) \
 for d in opt.get(e, []) \
 for m in [re.match(r'(?i)doctune\s*\[([^]]+)\]', d)]]; \
open('/tmp/doctune-requirements.txt', 'w').write('\n'.join(reqs) + '\n')" "${DOCTUNE_EXTRAS}" \
    && pip install --no-cache-dir -c constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/doctune-requirements.txt

# Then the package itself (dependencies are already in place).
COPY --chown=airflow:0 README.m[d] ./
COPY --chown=airflow:0 include/doctune ./include/doctune
COPY --chown=airflow:0 operators ./operators
RUN pip install --no-cache-dir --no-deps . \
    && doctune --help > /dev/null

WORKDIR /opt/airflow

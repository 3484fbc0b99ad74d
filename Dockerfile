# syntax=docker/dockerfile:1
# The backfill-operator image.
#
#   docker build -t backfill-operator:0.1.0 .
#
# Two stages on the same slim Python base: the first installs the project into a virtualenv with
# the install command the test command exercises (hack/setup.sh: `pip install -c
# hack/constraints.txt .`, there editable and with the dev extra); the second copies only that
# virtualenv. The final stage has no compiler, no pip cache and no source tree, runs as a numeric
# non-root UID and never writes to its root filesystem (bytecode is compiled at build time), so
# it runs under Pod Security "restricted" with readOnlyRootFilesystem.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv /opt/backfill-operator
# .dockerignore lets in only pyproject.toml, README.md, operator/ and hack/constraints.txt.
COPY . .
RUN if [ -f hack/constraints.txt ]; then set -- -c hack/constraints.txt; fi \
 && /opt/backfill-operator/bin/pip install "$@" . \
 && /opt/backfill-operator/bin/backfill-operator --help >/dev/null

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
# Pass --build-arg SOURCE=<repository URL> and REVISION=$(git rev-parse HEAD) in CI.
ARG SOURCE=""
LABEL org.opencontainers.image.title="backfill-operator" \
      org.opencontainers.image.description="Declarative backfills on Kubernetes: one Job per partition, under a concurrency limit." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PATH=/opt/backfill-operator/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=builder /opt/backfill-operator /opt/backfill-operator
USER 65532:65532
WORKDIR /tmp
# /metrics and kopf's /healthz (the chart's defaults: --metrics-port 8080 --liveness-port 8081).
EXPOSE 8080 8081
ENTRYPOINT ["backfill-operator", "run"]
CMD ["--all-namespaces", "--standalone"]

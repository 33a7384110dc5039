# syntax=docker/dockerfile:1
#
# cqlstar service image.
#
#   docker build -t cqlstar .
#   docker run -p 8000:8000 -e CASSANDRA_HOSTS=... cqlstar
#
# With podman, build in the docker format or the HEALTHCHECK below is dropped:
#   podman build --format docker -t cqlstar .
#
# Two stages: the builder resolves the locked dependencies with uv into a
# virtualenv at /opt/venv; the runtime copies only that venv, so neither uv,
# the source tree nor build caches end up in the final image. Both stages use
# the same base image because the venv's interpreter symlinks point at it.

# The base of both stages. `just test-image` builds this file unchanged on a stand-in made from
# Debian's packages (tests/image/standin.py) by passing --build-arg PYTHON_IMAGE=...; anything else
# should be a Debian bookworm image with Python 3.11 and pip on the PATH.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# Pinned to the uv that wrote uv.lock.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# UV_COMPILE_BYTECODE: precompile so the non-root runtime never tries to
# write __pycache__. UV_LINK_MODE=copy: the cache mount is another
# filesystem, hard links would fail. UV_PYTHON_DOWNLOADS=never: use the
# image's interpreter, never fetch one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /build

# Dependencies first, from the lock file alone, so this layer is reused
# until pyproject.toml or uv.lock change rather than on every code edit.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, as a regular (non-editable) install so the
# runtime stage needs nothing from /build. README.md is the package's
# declared readme, which the build backend reads.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime

# A fixed UID/GID so volume permissions and Kubernetes runAsUser can rely on it.
RUN groupadd --system --gid 10001 cqlstar \
    && useradd --system --uid 10001 --gid cqlstar --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin cqlstar

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app
# Numeric so runtimes can verify non-root without reading /etc/passwd
# (e.g. Kubernetes runAsNonRoot).
USER 10001:10001
EXPOSE 8000

# /health answers 503 while Cassandra is unreachable, which urlopen raises
# on, so the container turns unhealthy exactly when it cannot serve. Python
# because the slim image has no curl or wget. It asks the port the server
# listens on: PORT, which `docker run -e PORT=...` may change.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]

# Exec form, no shell and no init wrapper: `python -m cqlstar` (cqlstar.serving) is
# PID 1. It validates the settings, then runs granian in this same process, which
# installs its SIGTERM handler here: `docker stop` reaches it directly, it stops
# accepting connections, lets its worker finish in-flight requests and reaps it.
# A shell-form command would leave /bin/sh as PID 1 swallowing the signal until
# the kill timeout. HOST and PORT above say where it listens.
ENTRYPOINT ["python", "-m", "cqlstar"]

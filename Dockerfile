# syntax=docker/dockerfile:1
# One image for every directdl service; compose.yaml picks the module with `command:`.
# Bookworm, the Debian the project is tested on: its libnfs-utils 4.0 is the nfs-cat whose exit
# codes host_agent/download/nfs.py reads.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
RUN pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /src
RUN uv venv --python /usr/local/bin/python3.11 /app/.venv
# The dependencies first, exactly as requirements.lock pins and hashes them (no dev tools):
# this layer is rebuilt when the lock file changes, not on every change to the code.
COPY requirements.lock ./
RUN uv pip sync --require-hashes --python /app/.venv/bin/python requirements.lock
# Then directdl itself, installed as a wheel rather than linked back to /src. Its build
# backend (hatchling, and what hatchling needs) is the one the dev lock pins: uv builds with
# exactly those versions, checks them against the lock's hashes, and refuses any other.
COPY pyproject.toml README.md requirements-dev.lock ./
COPY libs/ libs/
COPY services/ services/
RUN uv pip install --python /app/.venv/bin/python --no-deps \
        --build-constraint requirements-dev.lock .

FROM ${PYTHON_IMAGE}
# nfs-cat and nfs-ls: the agent reads NFS sources in user space, without a kernel mount.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnfs-utils \
    && rm -rf /var/lib/apt/lists/*
# A named volume mounted on one of these directories starts with its owner, so the services
# can write their SQLite database, trust store, pool and sample templates there.
RUN groupadd --gid 10001 directdl \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/directdl \
        --shell /usr/sbin/nologin directdl \
    && install -d -o directdl -g directdl -m 0755 /var/lib/directdl /mnt/primary /srv/templates
# Owned by root: the services can read their code, not change it.
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DIRECTDL_DATA_DIR=/var/lib/directdl
WORKDIR /app
USER directdl
EXPOSE 8080 8081 8082 8083 8084 8090 8091
CMD ["python", "-m", "registration"]

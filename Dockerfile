# syntax=docker/dockerfile:1
# claude-nexus images: `docker build --target proxy .` (the default, last stage) and
# `docker build --target dashboard .`. See docs/deployment.md.
#
# Base images are pinned by digest, so a rebuild gets the same bytes until the pin is moved on
# purpose. The digests are the multi-arch index digests of the tags, as published on Docker Hub
# (python:3.11-slim-bookworm as of 2026-09, Python 3.11.16; node:22-bookworm-slim as of 2026-09-24),
# taken from public build logs and Dockerfiles that resolved them. To refresh one:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   # the "Digest:" line
# then replace it in every FROM below (both python stages share it) and run `make lint`
# and the deployment tests (tests/integration/test_deployment.py).

# The dashboard's JS assets come from the npm registry through scripts/fetch_dashboard_assets.py;
# only node and npm are taken from this image, into the assets stage below.
FROM node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c AS node

FROM python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84 AS assets
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
WORKDIR /src
# A stage of its own: the assets are fetched again only when the script (which pins them) changes.
COPY scripts/fetch_dashboard_assets.py scripts/
RUN python scripts/fetch_dashboard_assets.py

FROM python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84 AS build
# The same uv as the Makefile's UV_VERSION (tests/integration/test_deployment.py keeps them equal).
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1
WORKDIR /src
# The dependencies first, from the lock alone: this layer is rebuilt only when the lock changes.
# --no-deps: the export is the lock's complete closure (django, excluded in pyproject, stays out);
# the pinned hashes in it are checked.
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --no-emit-project --format requirements.txt --output-file /tmp/requirements.txt \
    && uv venv /opt/venv --python /usr/local/bin/python3.11 \
    && uv pip install --python /opt/venv/bin/python --no-deps --requirement /tmp/requirements.txt
COPY .gitignore README.md ./
COPY migrations migrations
COPY src src
COPY --from=assets /src/src/nexus/entrypoints/dashboard/static/vendor src/nexus/entrypoints/dashboard/static/vendor
RUN uv build --wheel --out-dir /tmp/dist \
    && uv pip install --python /opt/venv/bin/python --no-deps /tmp/dist/*.whl

# What both images share: the virtualenv and nothing else (no compiler, no uv, no pip run).
FROM python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84 AS runtime
RUN groupadd --system --gid 10001 nexus \
    && useradd --system --uid 10001 --gid nexus --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nexus \
    && mkdir /data /credentials \
    && chown nexus:nexus /data /credentials
COPY --from=build /opt/venv /opt/venv
# HOST 0.0.0.0: reachable from outside the container. Everything the app writes (the journal, the
# dashboard's key and session secret, synced prompts, test samples) goes under /data, so the
# rest of the file system (the working directory /app included) can be read-only. The code is
# compiled already: no .pyc is written.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    NEXUS_DATA_DIR=/data \
    CREDENTIALS_DIR=/credentials \
    MCP_PROMPTS_DIR=/data/prompts \
    TEST_SAMPLES_DIR=/data/test-samples \
    LOG_FORMAT=json
VOLUME ["/data", "/credentials"]
WORKDIR /app
USER 10001:10001
# slim has no curl: the standard library asks. Any error, a refused connection or a non-2xx status
# raises, and the command exits 1. No proxy from the environment is used for loopback.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["claude-nexus-proxy"]

# The dashboard alone: reads the proxy's database, never writes to it.
FROM runtime AS dashboard
ENV NEXUS_ROLE=dashboard \
    PORT=3001
EXPOSE 3001

# The proxy (the default target). NEXUS_ROLE=all serves the dashboard from this image too.
FROM runtime AS proxy
ENV NEXUS_ROLE=proxy
EXPOSE 3000

# syntax=docker/dockerfile:1
# WasmWiz: a build stage that makes a virtualenv, and a slim runtime stage that only runs it.
# Pinned base images; the runtime has no compiler, no pip cache and runs as a non-root user
# with a read-only root filesystem (only /var/lib/wasmwiz and /tmp are writable).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/wasmwiz
COPY requirements/runtime.txt ./requirements/
COPY pyproject.toml README.md ./
COPY src ./src
COPY client ./client
# The runtime lock with every hash checked (pip and setuptools included), then our two
# projects, the client (client/) and the server, with nothing more fetched: no dependencies,
# no isolated build environment.
RUN /opt/wasmwiz/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt \
    && /opt/wasmwiz/bin/pip install --no-deps --no-build-isolation ./client . \
    && /opt/wasmwiz/bin/pip check \
    && find /opt/wasmwiz -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/wasmwiz/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8080 \
    VAR_DIR=/var/lib/wasmwiz \
    WASM_TEMP_DIR=/tmp/wasmwiz
RUN groupadd --system --gid 10001 wasmwiz \
    && useradd --system --uid 10001 --gid wasmwiz --home-dir /var/lib/wasmwiz --shell /usr/sbin/nologin wasmwiz \
    && mkdir -p /var/lib/wasmwiz \
    && chown wasmwiz:wasmwiz /var/lib/wasmwiz
COPY --from=build /opt/wasmwiz /opt/wasmwiz
USER 10001:10001
WORKDIR /var/lib/wasmwiz
VOLUME ["/var/lib/wasmwiz"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2).status == 200 else 1)"]
# Exec form: wasmwiz runs as PID 1 and gets SIGTERM itself, which starts draining.
ENTRYPOINT ["wasmwiz"]
CMD ["serve"]

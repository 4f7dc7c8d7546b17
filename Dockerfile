# syntax=docker/dockerfile:1
# WasmWiz: a build stage that makes a virtualenv, and a slim runtime stage that only runs it.
# The runtime has no compiler, no pip cache and runs as a non-root user with a read-only
# root filesystem (only /var/lib/wasmwiz and /tmp are writable).
#
# Base: python:3.11-slim, Debian with the python.org CPython build that CI tests on, the same
# in both stages so the virtualenv's interpreter path holds. wasmtime's wheel is manylinux:
# its shared library needs glibc (no Alpine). Distroless Python images carry Debian's own
# python3 (another build, another path, its version moving with Debian's release), which
# the virtualenv would have to be built against, and have no shell to debug with; the
# Kubernetes pod runs this image with a read-only root, no capabilities and seccomp instead.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/wasmwiz
# The runtime lock first, in a layer of its own: a change to src/ or client/ rebuilds from
# the COPY below and reuses this layer, so the dependencies are installed again only when
# the lock changes. Every hash is checked (pip and setuptools included); --no-deps, as the
# lock is whole.
# Bytecode is compiled here, checked by hash rather than by the sources' times: the
# runtime's root is read-only, so without it every start would compile every module again.
COPY requirements/runtime.txt ./requirements/
RUN /opt/wasmwiz/bin/pip install --no-compile --require-hashes --no-deps -r requirements/runtime.txt \
    && /opt/wasmwiz/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/wasmwiz/lib
# Then our two projects, the client (client/) and the server, not editable, with nothing
# more fetched: no dependencies, no isolated build environment (setuptools is in the lock).
COPY pyproject.toml README.md ./
COPY client ./client
COPY src ./src
RUN /opt/wasmwiz/bin/pip install --no-compile --no-deps --no-build-isolation ./client . \
    && /opt/wasmwiz/bin/pip check \
    && /opt/wasmwiz/bin/python -m compileall -q --invalidation-mode unchecked-hash \
        /opt/wasmwiz/lib/python3*/site-packages/wasmwiz*

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
# For `docker run` and Compose; Kubernetes ignores it and uses the Deployment's probes.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2).status == 200 else 1)"]
# Exec form: wasmwiz runs as PID 1 and gets SIGTERM itself, which starts draining.
# The same image runs the other commands: `db upgrade`, `usage prune`.
ENTRYPOINT ["wasmwiz"]
CMD ["serve"]

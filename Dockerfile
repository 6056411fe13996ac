# syntax=docker/dockerfile:1
# churnserve: build the release binaries with the same script as the README's run command
# (scripts/build-release.sh: ONNX Runtime from the hash-pinned PyPI wheel, then cargo),
# then run them as a non-root user on a slim Debian. `churnserve` is the entrypoint and
# `serve` the default command, so `check` and `migrate` run from the same image:
#   docker run IMAGE migrate --registry-url postgres://…
FROM rust:1.95-bookworm AS build
# The wheel that carries ONNX Runtime is pinned by version and hash; pip only fetches it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The crate registry and the build directory are BuildKit caches: a rebuild after a source
# change compiles only the workspace's crates. The binaries leave the cache before the
# step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-release.sh \
    && mkdir -p /out \
    && cp target/release/churnserve target/release/churnctl .onnxruntime/libonnxruntime.so.1.31.1 /out/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/churnserve churnserve
COPY --from=build /out/churnserve /out/churnctl /usr/local/bin/
COPY --from=build /out/libonnxruntime.so.1.31.1 /usr/local/lib/
# mimalloc v3 keeps freed pages for a second before returning them to the system; 10 ms
# took a soak's peak resident set from about 225 to 150 MiB at the same Score/s
# (benches/memory.sh). It is read at process start, so it is set here, not in the code.
ENV ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so.1.31.1 \
    MIMALLOC_PURGE_DELAY=10 \
    CHURNSERVE_LISTEN=0.0.0.0:50051 \
    CHURNSERVE_HTTP_LISTEN=0.0.0.0:8000 \
    CHURNSERVE_DATA_DIR=/var/lib/churnserve
USER 10001
# The embedded registry (SQLite and artifacts); with --registry-url and --artifact-store
# elsewhere, node-local staging and the object cache.
VOLUME ["/var/lib/churnserve"]
# gRPC (churn.v1, KServe V2, grpc.health.v1) and HTTP (/metrics, /healthz, /readyz).
EXPOSE 50051 8000
# /readyz over bash's /dev/tcp: the slim image has no HTTP client, and needs none.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["churnserve"]
CMD ["serve"]

# churnserve: build the release binaries with the same script as the README's run command
# (scripts/build-release.sh: ONNX Runtime from the hash-pinned PyPI wheel, then cargo),
# then run them as a non-root user on a slim Debian, with the registry on a volume.
FROM rust:1.95-bookworm AS build
# The wheel that carries ONNX Runtime is pinned by version and hash; pip only fetches it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/build-release.sh

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/churnserve churnserve
COPY --from=build /src/target/release/churnserve /src/target/release/churnctl /usr/local/bin/
COPY --from=build /src/.onnxruntime/libonnxruntime.so.1.31.1 /usr/local/lib/
ENV ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so.1.31.1 \
    CHURNSERVE_LISTEN=0.0.0.0:50051 \
    CHURNSERVE_HTTP_LISTEN=0.0.0.0:8000 \
    CHURNSERVE_DATA_DIR=/var/lib/churnserve
USER 10001
VOLUME ["/var/lib/churnserve"]
EXPOSE 50051 8000
# /readyz over bash's /dev/tcp: the slim image has no HTTP client, and needs none.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["churnserve", "serve"]

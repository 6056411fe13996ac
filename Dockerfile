# churnserve: build the release binaries, then run them on a slim Debian with the ONNX
# Runtime library that scripts/setup-onnxruntime.sh takes from the official PyPI wheel.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/setup-onnxruntime.sh \
    && cargo build --release --locked -p churnserve -p churnctl

FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /var/lib/churnserve churnserve
COPY --from=build /src/target/release/churnserve /src/target/release/churnctl /usr/local/bin/
COPY --from=build /src/.onnxruntime/libonnxruntime.so.1.31.1 /usr/local/lib/
ENV ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so.1.31.1
USER churnserve
EXPOSE 50051
ENTRYPOINT ["churnserve", "serve", "--listen", "0.0.0.0:50051", "--data-dir", "/var/lib/churnserve"]

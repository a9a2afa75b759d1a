# kestrel in a container: docs/deployment.md (with docker-compose.yml).
#
#   docker build -t kestrel .

# Builder: the README's install command, on the official Rust image.
FROM rust:1-bookworm AS builder
# The commit `kestrel --version` names, as .git stays out of the build context:
#   docker build --build-arg KESTREL_COMMIT=$(git rev-parse --short=12 HEAD) -t kestrel:local .
ARG KESTREL_COMMIT
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_TARGET_DIR=/src/target \
    cargo install --path crates/kestrel --locked --root /usr/local/kestrel

# Runtime: the binary, CA certificates (TLS to PostgreSQL, Vault, AWS, http tasks) and tini
# (PID 1: forwards signals to kestrel and reaps the processes tasks leave behind). No compiler,
# no package manager cache.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
# A dedicated user, uid 10001: the master key file you mount must be readable by it (mode 0600,
# owned by 10001). Its data directory is the volume below, mode 0700; storage/ in it is where a
# cluster mounts the storage every node shares.
RUN groupadd --system --gid 10001 kestrel \
    && useradd --system --no-log-init --uid 10001 --gid kestrel \
        --home-dir /var/lib/kestrel --shell /usr/sbin/nologin kestrel \
    && install -d -m 0700 -o kestrel -g kestrel /var/lib/kestrel /var/lib/kestrel/storage
COPY --from=builder /usr/local/kestrel/bin/kestrel /usr/local/bin/kestrel
ENV KESTREL_DATA_DIR=/var/lib/kestrel
USER 10001:10001
VOLUME ["/var/lib/kestrel"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["kestrel", "health"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["kestrel", "server", "--bind", "0.0.0.0:8080"]

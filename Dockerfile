# syntax=docker/dockerfile:1
# Build: SQLX_OFFLINE uses the committed .sqlx data, so no database is needed.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock build.rs ./
COPY .sqlx ./.sqlx
COPY migrations ./migrations
COPY src ./src
COPY actors ./actors
COPY tests ./tests
# The registry and target caches survive between builds: only changed crates rebuild.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin rookery \
    && install -m 0755 target/release/rookery /usr/local/bin/rookery

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --create-home rookery
COPY --from=build /usr/local/bin/rookery /usr/local/bin/rookery
WORKDIR /app
USER rookery
ENV ROOKERY_BIND=0.0.0.0:8080 ROOKERY_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
ENTRYPOINT ["rookery"]
CMD ["serve"]

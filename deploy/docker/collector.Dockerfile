# Pantau collector image.
# Build from the repository root:
#   docker build -f deploy/docker/collector.Dockerfile -t pantau-collector .
# The database lives in the volume /var/lib/pantau-collector; the
# configuration is /etc/pantau/collector.toml (mount your own over it).

FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
# protox compiles the protocol: no system protoc needed.
RUN cargo build --release --locked -p pantau-collector \
    && install -D -m 0755 target/release/pantau-collector /out/pantau-collector

FROM debian:bookworm-slim
RUN groupadd --system --gid 10470 pantau-collector \
    && useradd --system --uid 10470 --gid pantau-collector --home-dir /var/lib/pantau-collector \
        --shell /usr/sbin/nologin pantau-collector \
    && install -d -o pantau-collector -g pantau-collector -m 0750 /var/lib/pantau-collector
COPY --from=build /out/pantau-collector /usr/bin/pantau-collector
COPY deploy/config/collector.example.toml /etc/pantau/collector.toml
# Numeric, so orchestrators can check it is not root.
USER 10470:10470
WORKDIR /var/lib/pantau-collector
VOLUME ["/var/lib/pantau-collector"]
# 7470: agents (gRPC). 7471: /metrics, /healthz, API, pages.
EXPOSE 7470 7471
ENTRYPOINT ["/usr/bin/pantau-collector", "--config", "/etc/pantau/collector.toml"]
CMD ["serve"]

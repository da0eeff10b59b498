# Pantau agent image, for sites that run containers (an OPD office normally
# installs the .deb instead, see docs/INSTALL.md).
# Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t pantau-agent .
# Run with the configuration and token mounted and a volume for the spool:
#   docker run -d --name pantau-agent --cap-drop ALL --cap-add NET_RAW \
#     -v /etc/pantau/agent.toml:/etc/pantau/agent.toml:ro \
#     -v /etc/pantau/agent.token:/etc/pantau/agent.token:ro \
#     -v pantau-agent-spool:/var/lib/pantau-agent pantau-agent

FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pantau-agent \
    && install -D -m 0755 target/release/pantau-agent /out/pantau-agent

FROM debian:bookworm-slim
# libcap2-bin only to give the binary CAP_NET_RAW for ICMP as a non-root
# user. Not version-pinned: a pin breaks with every Debian security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10471 pantau-agent \
    && useradd --system --uid 10471 --gid pantau-agent --home-dir /var/lib/pantau-agent \
        --shell /usr/sbin/nologin pantau-agent \
    && install -d -o pantau-agent -g pantau-agent -m 0750 /var/lib/pantau-agent
COPY --from=build /out/pantau-agent /usr/bin/pantau-agent
RUN setcap cap_net_raw+ep /usr/bin/pantau-agent
COPY deploy/config/agent.example.toml /etc/pantau/agent.toml
# Numeric, so orchestrators can check it is not root.
USER 10471:10471
WORKDIR /var/lib/pantau-agent
VOLUME ["/var/lib/pantau-agent"]
ENTRYPOINT ["/usr/bin/pantau-agent"]
CMD ["run", "--config", "/etc/pantau/agent.toml"]

# A stand-in for the official redis image on a host that cannot pull it: Debian's Redis 7.0, redis-server in the
# foreground, redis-cli for the health check.
FROM doctune-local/debian:bookworm

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

USER redis
CMD ["redis-server", "--save", "", "--appendonly", "no"]

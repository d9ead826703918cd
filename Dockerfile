# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/infracast-auth ./cmd/infracast-auth

# Run it unprivileged on a slim Debian (bash is used by the health check).
FROM debian:trixie-slim
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/infracast-auth /usr/local/bin/infracast-auth
RUN mkdir -p /data && chown 65532:65532 /data && chmod 0700 /data
ENV INFRACAST_DATA_DIR=/data \
    INFRACAST_LISTEN=:8080
USER 65532:65532
EXPOSE 8080
VOLUME /data
# Liveness (/health), not readiness: /health answers from the first moment of the
# start, while /ready stays 503 through the embedded NATS's recovery after a crash and
# a full replay (minutes on a big stream) and whenever NATS is unreachable — a /ready
# check marked such a replica unhealthy, and an orchestrator that restarts unhealthy
# containers (Swarm) would start its recovery over. Route traffic by /ready
# (docs/operations.md "Probes"). Assumes the default port 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/infracast-auth"]

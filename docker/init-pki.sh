#!/bin/sh
# init-pki.sh makes the dev PKI shared by the compose services, once. It runs
# as the one-shot "pki" service of docker-compose.yml (busybox sh in the
# image) before the SSP and the demonstrator start, and again on every
# `docker compose up`, so it must succeed without changing anything when
# the PKI is already there: `sspemu certs init` alone refuses to overwrite
# (exit 1), and with --force it would make a new CA and invalidate the
# consumer certificate already copied out.
#
# SSPEMU_STATE_DIR (set in the image) says where; the PKI goes in its pki/.
set -eu

pki="${SSPEMU_STATE_DIR:?SSPEMU_STATE_DIR must name the state directory}/pki"

if [ -f "$pki/ca.pem" ]; then
	echo "pki: keeping the dev PKI in $pki"
else
	sspemu certs init --dir "$pki"
fi

# The SSP reaches the demonstrator as https://demonstrator:9443, a name that
# provider.pem does not carry: one more server certificate from the same CA.
if [ -f "$pki/demonstrator.pem" ] && [ -f "$pki/demonstrator-key.pem" ]; then
	echo "pki: keeping $pki/demonstrator.pem"
else
	sspemu certs issue --dir "$pki" --name demonstrator --server --force
fi

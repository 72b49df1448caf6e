#!/usr/bin/env bash
# Build dependency of the collector: OpenSSL's headers and pkg-config, for openssl-sys (the
# passkeys' webauthn-rs links the system OpenSSL; libssl3 at run time). On the base image
# already; installed here for a machine without them. Idempotent; CI runs every
# scripts/deps/*.sh as root.
set -euo pipefail

if pkg-config --exists openssl 2>/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libssl-dev pkg-config

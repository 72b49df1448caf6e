#!/usr/bin/env bash
# Installs systemd's `systemd-analyze`, which tests/tests/e2e/deploy.rs runs to verify the
# units in deploy/systemd/. Idempotent: does nothing when it is already there.
# CI runs every scripts/deps/*.sh as root.
set -euo pipefail

if command -v systemd-analyze >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian ships systemd-analyze in the systemd package itself.
apt-get install -y -qq --no-install-recommends systemd
command -v systemd-analyze >/dev/null

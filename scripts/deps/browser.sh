#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver, which tests/tests/e2e/web.rs drives over
# WebDriver (headless, --no-sandbox as root, traffic only to 127.0.0.1) to sign in to the web
# interface and take the README's screenshots. Idempotent: does nothing when both are there.
# CI runs every scripts/deps/*.sh as root. Cost on a fresh machine: ~110 MB of packages,
# about a minute to download and unpack.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
command -v chromium >/dev/null
command -v chromedriver >/dev/null

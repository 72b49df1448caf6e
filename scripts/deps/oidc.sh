#!/usr/bin/env bash
# Installs the OpenID provider the web interface's OIDC tests sign in through: npm's
# `oidc-provider` (panva, a certified OpenID Provider), run by tests/peers/oidc-op.mjs on
# 127.0.0.1 with a test-made certificate. Idempotent: does nothing when the pinned version is
# already installed. CI runs every scripts/deps/*.sh as root.
set -euo pipefail

DIR="${TILLSYN_OIDC_PROVIDER_DIR:-/opt/tillsyn-oidc}"
VERSION="9.13.3"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nodejs npm
fi

installed=""
if [ -f "$DIR/node_modules/oidc-provider/package.json" ]; then
  installed="$(node -p "require('$DIR/node_modules/oidc-provider/package.json').version")"
fi
if [ "$installed" != "$VERSION" ]; then
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name":"tillsyn-oidc-peer","private":true}' > "$DIR/package.json"
  (cd "$DIR" && npm install --no-audit --no-fund --save-exact "oidc-provider@$VERSION")
fi
echo "oidc-provider $VERSION in $DIR"

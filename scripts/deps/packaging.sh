#!/usr/bin/env bash
# Tools for scripts/package.sh and scripts/package-check.sh: cargo-deb and cargo-generate-rpm
# (from crates.io, pinned, `cargo install --locked`: about 6 min each cold on a busy 2-core
# machine, ~1.5 min CPU; skipped when the pinned version is there) and Debian's rpm (to
# inspect the .rpm files with `rpm -qlp`). Idempotent; CI runs every scripts/deps/*.sh as root.
set -euo pipefail

CARGO_DEB=3.8.0
CARGO_GENERATE_RPM=0.21.1

if ! command -v rpm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends rpm
fi

bin="$HOME/.cargo/bin"
install_tool() {
    local crate=$1 version=$2
    if "$bin/$crate" --version 2>/dev/null | grep -qF "$version"; then
        return
    fi
    # Its own target dir, removed afterwards: the workspace's is not polluted.
    local build
    build="$(mktemp -d)"
    CARGO_TARGET_DIR="$build" cargo install --locked --quiet "$crate@$version"
    rm -rf "$build"
}
install_tool cargo-deb "$CARGO_DEB"
install_tool cargo-generate-rpm "$CARGO_GENERATE_RPM"

#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this file and nothing else).
# 1. installs what the tests need (real peers: Debian packages, Python simulators; the cross
#    toolchains and wine) through the idempotent scripts in scripts/deps/;
# 2. runs every Rust test in the workspace: unit, fixture, live-peer and end-to-end tests;
# 3. builds the .deb/.rpm packages from the binaries step 2 built, inspects them, installs and
#    purges them on this machine (scripts/package-check.sh; tools from scripts/deps/packaging.sh);
# 4. checks that README's first command resolves (`cargo run -p tillsyn-collector`; the e2e
#    tests run the quickstart itself through the built binary);
# 5. builds the agent for Windows and macOS, and runs the Windows build under wine against a
#    local collector (scripts/platform-check.sh; its tools come from scripts/deps/cross.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

for deps in scripts/deps/*.sh; do
    [ -e "$deps" ] || continue
    echo "==> $deps"
    bash "$deps"
done

echo "==> cargo test --workspace"
cargo test --workspace --locked

echo "==> packages: .deb and .rpm built from the test binaries, inspected, installed, purged"
scripts/package-check.sh

echo "==> README's first command: cargo run -p tillsyn-collector resolves to the collector"
cargo run --locked --quiet -p tillsyn-collector -- --version

scripts/platform-check.sh

if ls */fuzz/Cargo.toml >/dev/null 2>&1 && [ -x scripts/fuzz-smoke.sh ]; then
    echo "==> fuzz smoke"
    scripts/fuzz-smoke.sh
fi

#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this file and nothing else).
# 1. installs what the tests need (real peers: Debian packages, Python simulators; the cross
#    toolchains and wine) through the idempotent scripts in scripts/deps/, while
# 2. the workspace's tests build; then runs every Rust test in the workspace: unit, fixture,
#    live-peer and end-to-end tests;
# 3. builds the .deb/.rpm packages from the binaries step 2 built, inspects them, installs and
#    purges them on this machine (scripts/package-check.sh; tools from scripts/deps/packaging.sh);
# 4. checks that README's first command resolves (`cargo run -p tillsyn-collector`; the e2e
#    tests run the quickstart itself through the built binary);
# 5. builds the agent for Windows and macOS, and runs the Windows build under wine against a
#    local collector (scripts/platform-check.sh; its tools come from scripts/deps/cross.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# The peers install (mostly downloads) while the workspace's tests build (mostly CPU): on a
# cold 2-core machine that overlap is several minutes of the CI budget. Nothing the build needs
# comes from these scripts (SQLite is bundled, protobuf is compiled by protox, the cross
# toolchains are used only by platform-check below). Their output is shown once they are done.
deps_log="$(mktemp)"
(
    set -e
    for deps in scripts/deps/*.sh; do
        [ -e "$deps" ] || continue
        echo "==> $deps"
        bash "$deps"
    done
) >"$deps_log" 2>&1 &
deps_pid=$!

echo "==> cargo test --workspace --no-run (built while the peers install)"
if ! cargo test --workspace --locked --no-run; then
    wait "$deps_pid" || true
    cat "$deps_log"
    exit 1
fi
echo "==> waiting for scripts/deps/*.sh"
if ! wait "$deps_pid"; then
    cat "$deps_log"
    echo "test.sh: installing the test peers failed (above)" >&2
    exit 1
fi
cat "$deps_log"
rm -f "$deps_log"

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

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
#    local collector (scripts/platform-check.sh; its tools come from scripts/deps/cross.sh);
# 6. runs every cargo-fuzz target briefly (scripts/fuzz-smoke.sh; built in the background
#    since step 1).
set -euo pipefail
cd "$(dirname "$0")/.."

# The one thing the build itself needs from the system: OpenSSL's headers for the passkeys'
# webauthn-rs (on the base image already; the script returns at once then).
bash scripts/deps/openssl.sh

# The peers install (mostly downloads) while the workspace's tests build (mostly CPU): on a
# cold 2-core machine that overlap is several minutes of the CI budget. Nothing else the build
# needs comes from these scripts (SQLite is bundled, protobuf is compiled by protox, the cross
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

# The fuzz crates build meanwhile too, into their own target directories: the workspace build
# spends long stretches on one core (the collector crate, the links), which this fills. Run at
# the end by scripts/fuzz-smoke.sh, which then finds them built.
fuzz_log="$(mktemp)"
fuzz_pid=""
if ls */fuzz/Cargo.toml >/dev/null 2>&1 && [ -x scripts/fuzz-smoke.sh ]; then
    scripts/fuzz-smoke.sh --build-only >"$fuzz_log" 2>&1 &
    fuzz_pid=$!
fi

echo "==> cargo test --workspace --no-run (built while the peers install)"
if ! cargo test --workspace --locked --no-run; then
    wait "$deps_pid" || true
    cat "$deps_log"
    [ -z "$fuzz_pid" ] || kill "$fuzz_pid" 2>/dev/null || true
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
# The tests run alone: peers with timeouts should not share the CPU with a compiler.
if [ -n "$fuzz_pid" ]; then
    echo "==> waiting for the fuzz crates' build (started with the workspace's)"
    if ! wait "$fuzz_pid"; then
        cat "$fuzz_log"
        echo "test.sh: building the fuzz crates failed (above)" >&2
        exit 1
    fi
    tail -n 3 "$fuzz_log"
    rm -f "$fuzz_log"
fi

echo "==> cargo test --workspace"
cargo test --workspace --locked

echo "==> packages: .deb and .rpm built from the test binaries, inspected, installed, purged"
scripts/package-check.sh

echo "==> README's first command: cargo run -p tillsyn-collector resolves to the collector"
cargo run --locked --quiet -p tillsyn-collector -- --version

scripts/platform-check.sh

if [ -n "$fuzz_pid" ]; then
    echo "==> fuzz smoke"
    scripts/fuzz-smoke.sh
fi

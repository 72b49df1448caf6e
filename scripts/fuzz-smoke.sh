#!/usr/bin/env bash
# Runs every cargo-fuzz target in the repository for a short time: a smoke test that the targets
# still build and that the committed seeds plus a few seconds of mutation crash nothing.
#
# Every `*/fuzz/Cargo.toml` is a cargo-fuzz crate; every target `cargo fuzz list` names in it is
# run for FUZZ_SECONDS (default 10). Exits non-zero if any target crashes, panics, leaks past
# the RSS limit or hangs, after printing the saved input's path; all targets run either way.
#
# The machine has only the stable toolchain. cargo-fuzz needs nightly flags
# (-Zsanitizer=address, libFuzzer's instrumentation), which the stable compiler accepts with
# RUSTC_BOOTSTRAP=1; nothing else about the build changes.
#
# New corpus entries go to a scratch directory, not corpus/, so a run leaves the work tree clean.
#
# `--build-only` installs cargo-fuzz if needed and builds every fuzz crate, running nothing:
# scripts/test.sh starts that in the background while the workspace's tests build (the fuzz
# crates have target directories of their own, so the two builds never wait for each other's
# lock and fill each other's idle core), and calls this script without it later to run them.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
# Large enough for a real agent report (the seed from the LUKS fixture is ~7 KiB) and a register
# of a few dozen rows, small enough that each execution stays fast.
FUZZ_MAX_LEN="${FUZZ_MAX_LEN:-16384}"
export RUSTC_BOOTSTRAP=1
CARGO_FUZZ=0.13.2

build_only=false
case "${1:-}" in
    "") ;;
    --build-only) build_only=true ;;
    *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ"; then
    echo "==> cargo install cargo-fuzz@$CARGO_FUZZ"
    build="$(mktemp -d)"
    CARGO_TARGET_DIR="$build" cargo install --locked --quiet "cargo-fuzz@$CARGO_FUZZ"
    rm -rf "$build"
fi

build_flags=(-O --codegen-units 16)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()

for manifest in */fuzz/Cargo.toml; do
    [ -e "$manifest" ] || continue
    fuzz_dir="$(dirname "$manifest")"
    # -O builds release; the crate's [profile.release] keeps debug assertions and overflow
    # checks on, so arithmetic overflow in a parser is a crash, as it would be in a debug build.
    # cargo-fuzz passes -Ccodegen-units=1 in RUSTFLAGS (over the profile's value) unless told:
    # 16 builds the instrumented tree several minutes faster on 2 cores, and a few seconds of
    # smoke lose little to the slower code. `run` gets the same flags, or it would rebuild.
    echo "==> cargo fuzz build ($fuzz_dir)"
    cargo fuzz build "${build_flags[@]}" --fuzz-dir "$fuzz_dir"
    if "$build_only"; then
        continue
    fi
    for target in $(cargo fuzz list --fuzz-dir "$fuzz_dir"); do
        echo "==> fuzz $fuzz_dir $target for ${FUZZ_SECONDS}s"
        seeds="$fuzz_dir/corpus/$target"
        mkdir -p "$scratch/$target" "$fuzz_dir/artifacts/$target"
        touch "$scratch/$target.start"
        # libFuzzer writes new inputs to the first corpus directory only, and reads both.
        if ! cargo fuzz run "${build_flags[@]}" --fuzz-dir "$fuzz_dir" "$target" "$scratch/$target" "$seeds" -- \
            -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -rss_limit_mb=2048 \
            -timeout=10 -print_final_stats=1; then
            echo "!!! $fuzz_dir $target failed; saved input(s):"
            find "$fuzz_dir/artifacts/$target" -type f -newer "$scratch/$target.start" -printf '    %p\n'
            failed+=("$fuzz_dir:$target")
        fi
    done
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke failed: ${failed[*]}"
    echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} --fuzz-dir <crate> <target> <input>"
    exit 1
fi
if "$build_only"; then
    echo "fuzz crates built"
else
    echo "fuzz smoke passed"
fi

#!/usr/bin/env bash
# Builds the packages: tillsyn-agent and tillsyn-collector as .deb (cargo-deb) and .rpm
# (cargo-generate-rpm), with the binaries in /usr/bin, the hardened units from deploy/systemd/
# and the set-up scripts from deploy/packaging/ (system users, state directories, enrollment
# from /etc/default/tillsyn-agent). The tools come from scripts/deps/packaging.sh.
#
#   scripts/package.sh                 release build, packages in $CARGO_TARGET_DIR/packages/
#   scripts/package.sh --profile dev --no-build
#                                      package the binaries `cargo test` built (CI's check;
#                                      unoptimised, for inspecting and installing only)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --no-build) build=no; shift ;;
        *) echo "usage: $0 [--profile release|dev] [--no-build]" >&2; exit 2 ;;
    esac
done
export PATH="$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/packages"
case "$profile" in dev) profile_dir=debug ;; *) profile_dir="$profile" ;; esac
mkdir -p "$out"

if [ "$build" = yes ]; then
    cargo build --locked --profile "$profile" -p tillsyn-agent -p tillsyn-collector --bins
fi
for bin in tillsyn-agent tillsyn-collector; do
    [ -x "$target_dir/$profile_dir/$bin" ] || { echo "$target_dir/$profile_dir/$bin: not built" >&2; exit 1; }
done

# A dev (check) build is packaged with fast compression: it is inspected and installed, never
# shipped. Both tools strip the binaries they package (for the .rpm, from a stripped copy).
fast=()
rpm_compress=zstd
if [ "$profile" = dev ]; then fast=(--fast); rpm_compress=gzip; fi
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/$profile_dir"
for package in tillsyn-agent tillsyn-collector; do
    # cargo-deb warns that dev packages are for checking only; that is all they are used for.
    cargo deb --locked --no-build "${fast[@]}" --profile "$profile" -p "$package" -o "$out/" 2>&1 \
        | grep -v "dev profile is not supported\|To enable debug symbols" || true
    ls "$out/${package}_"*.deb >/dev/null
    strip -o "$stage/$profile_dir/$package" "$target_dir/$profile_dir/$package"
    # cargo-generate-rpm takes the crate directory, and reads target/release/BIN from
    # --target-dir/--profile: the stripped copy.
    cargo generate-rpm -p "${package#tillsyn-}" --target-dir "$stage" --profile "$profile" \
        --payload-compress "$rpm_compress" -o "$out/"
done
rm -rf "$stage"
ls -l "$out"

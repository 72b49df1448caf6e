#!/usr/bin/env bash
# Builds the packages: tillsyn-agent and tillsyn-collector as .deb (cargo-deb) and .rpm
# (cargo-generate-rpm), with the binaries in /usr/bin, the hardened units from deploy/systemd/
# and the set-up scripts from deploy/packaging/ (system users, state directories, enrollment
# from /etc/default/tillsyn-agent); and the Windows agent as tillsyn-agent-VERSION-x64.msi,
# built by wixl from deploy/windows/tillsyn-agent.wxs around the x86_64-pc-windows-gnu
# binary. The tools come from scripts/deps/packaging.sh, scripts/deps/msi.sh and (for the
# Windows build) scripts/deps/cross.sh.
#
#   scripts/package.sh                 release builds, packages in $CARGO_TARGET_DIR/packages/
#   scripts/package.sh --profile dev --no-build
#                                      package the binaries `cargo test` built (CI's check;
#                                      unoptimised, for inspecting and installing only)
#   --only linux | --only msi          the .deb/.rpm alone, or the .msi alone
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=yes
only=all
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --no-build) build=no; shift ;;
        --only) only="$2"; shift 2 ;;
        *) echo "usage: $0 [--profile release|dev] [--no-build] [--only linux|msi]" >&2; exit 2 ;;
    esac
done
export PATH="$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/packages"
case "$profile" in dev) profile_dir=debug ;; *) profile_dir="$profile" ;; esac
mkdir -p "$out"
case "$only" in all|linux|msi) ;; *) echo "--only: linux or msi, not $only" >&2; exit 2 ;; esac

# The .msi: wixl compiles the .wxs around the Windows binary; msibuild then writes what wixl's
# subset of WiX cannot say: (1) the installer's public properties in SecureCustomProperties,
# which wixl's MajorUpgrade writes with its own two only (no Secure attribute); without them an
# install started by an unprivileged user and elevated by policy would drop TILLSYN_COLLECTOR,
# TILLSYN_ENROLL_TOKEN and TILLSYN_CA on their way to the elevated part, where enrollment runs; (2) the
# condition TILLSYN_COLLECTOR on the component that starts the service at install (no
# Component/Condition in wixl).
build_msi() {
    local exe="$target_dir/x86_64-pc-windows-gnu/$profile_dir/tillsyn-agent.exe"
    if [ "$build" = yes ]; then
        cargo build --locked --profile "$profile" --target x86_64-pc-windows-gnu -p tillsyn-agent
    fi
    [ -f "$exe" ] || { echo "$exe: not built" >&2; exit 1; }
    local version
    version="$(cargo metadata --format-version 1 --no-deps --locked |
        python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "tillsyn-agent"))')"
    local msi="$out/tillsyn-agent-$version-x64.msi"
    local stage="$out/msi-stage"
    rm -rf "$stage" "$msi"
    mkdir -p "$stage"
    # wixl resolves File/@Source relative to the working directory; a stripped copy keeps
    # the .msi small (the dev binary carries DWARF).
    x86_64-w64-mingw32-strip -o "$stage/tillsyn-agent.exe" "$exe"
    (cd "$stage" && wixl --arch x64 -D "Version=$version" -D AgentExe=tillsyn-agent.exe \
        -o "$msi" "$OLDPWD/deploy/windows/tillsyn-agent.wxs")
    msibuild "$msi" -q "UPDATE \`Property\` SET \`Value\` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;TILLSYN_COLLECTOR;TILLSYN_ENROLL_TOKEN;TILLSYN_CA' WHERE \`Property\` = 'SecureCustomProperties'"
    msibuild "$msi" -q "UPDATE \`Component\` SET \`Condition\` = 'TILLSYN_COLLECTOR' WHERE \`Component\` = 'AgentStart'"
    rm -rf "$stage"
}
if [ "$only" = msi ]; then
    build_msi
    ls -l "$out"/*.msi
    exit 0
fi

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
if [ "$only" = all ]; then build_msi; fi
ls -l "$out"

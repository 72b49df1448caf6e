#!/usr/bin/env bash
# Installs what scripts/platform-check.sh needs to build the agent for Windows and macOS and to
# run the Windows build on this Linux machine:
# - the Rust targets x86_64-pc-windows-gnu and x86_64-apple-darwin (rustup);
# - Debian's MinGW-w64 cross compiler (ring's C code and the final link for Windows);
# - Debian's wine64 alone, without its recommends: the smallest Debian 12 set that runs a
#   64-bit console .exe (no X, fonts, sound or 32-bit wine are needed for a console program);
# - zig from PyPI in a venv, the C compiler for ring's C code on Apple targets, through a small
#   wrapper (`zig cc -target x86_64-macos`) that platform-check.sh passes as
#   CC_x86_64_apple_darwin. Zig brings macOS libc headers, so no Apple SDK is needed to compile;
#   linking a macOS binary would need the SDK's frameworks, which are not redistributable.
# Idempotent: re-running only fills in what is missing. CI runs every scripts/deps/*.sh as root.
set -euo pipefail

ZIG_VENV="${TILLSYN_ZIG_VENV:-/opt/tillsyn-zig-venv}"
# Pinned to the version platform-check.sh was run against.
ZIG_VERSION="0.15.2"

if command -v rustup >/dev/null 2>&1; then
  installed="$(rustup target list --installed)"
  for target in x86_64-pc-windows-gnu x86_64-apple-darwin; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
  done
else
  echo "cross deps: rustup not found; install the Rust targets x86_64-pc-windows-gnu and" \
       "x86_64-apple-darwin for the toolchain cargo uses" >&2
  exit 1
fi

apt_missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || apt_missing+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || apt_missing+=(wine64)
command -v python3 >/dev/null 2>&1 || apt_missing+=(python3)
# The TLS listener platform-check.sh starts for the Windows agent's listener probe.
command -v openssl >/dev/null 2>&1 || apt_missing+=(openssl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_missing+=(python3-venv)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${apt_missing[@]}"
fi

if [ ! -x "$ZIG_VENV/bin/python" ]; then
  python3 -m venv "$ZIG_VENV"
fi
if [ "$("$ZIG_VENV/bin/python" -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  "$ZIG_VENV/bin/pip" install --quiet "ziglang==$ZIG_VERSION"
fi

# cc-rs passes clang's `--target=x86_64-apple-macosx`, which zig does not parse: the wrapper
# drops it and names the target in zig's spelling. Zig's cache goes to a directory of its own
# outside $HOME.
cat >"$ZIG_VENV/bin/cc-x86_64-macos" <<EOF
#!/bin/sh
# C compiler for x86_64-apple-darwin, written by scripts/deps/cross.sh.
for arg do
  shift
  case "\$arg" in
    --target=*) ;;
    *) set -- "\$@" "\$arg" ;;
  esac
done
: "\${ZIG_GLOBAL_CACHE_DIR:=\${TMPDIR:-/tmp}/tillsyn-zig-cache}"
export ZIG_GLOBAL_CACHE_DIR
exec "$ZIG_VENV/bin/python" -m ziglang cc -target x86_64-macos "\$@"
EOF
chmod 0755 "$ZIG_VENV/bin/cc-x86_64-macos"

echo "cross deps ready: zig $("$ZIG_VENV/bin/python" -m ziglang version)," \
     "$(x86_64-w64-mingw32-gcc -dumpversion) mingw-w64 gcc, $(/usr/lib/wine/wine64 --version)"

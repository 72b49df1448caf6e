#!/usr/bin/env bash
# Installs what scripts/package.sh needs to build the Windows agent's .msi on Linux and what
# scripts/package-check.sh needs to inspect it: Debian's msitools (msiinfo, msidump, msibuild)
# and wixl (the WiX-subset compiler that turns deploy/windows/tillsyn-agent.wxs into an .msi).
# wine64 and the MinGW cross compiler (the agent .exe the .msi carries, `wine msiexec`) come from
# scripts/deps/cross.sh.
# Idempotent: re-running installs nothing when both tools are there. CI runs every
# scripts/deps/*.sh as root.
set -euo pipefail

apt_missing=()
command -v wixl >/dev/null 2>&1 || apt_missing+=(wixl)
command -v msiinfo >/dev/null 2>&1 || apt_missing+=(msitools)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${apt_missing[@]}"
fi
echo "msi deps ready: wixl $(wixl --version), $(msiinfo --version 2>&1 | head -n 1)"

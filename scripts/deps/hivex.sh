#!/usr/bin/env bash
# Installs Debian's hivex tools, which agent/tests/windows_hives.rs uses to make real registry
# hive files from the Windows fixtures' exports (hivexregedit --merge) and to edit them
# (hivexsh -w): the agent's hive reader is tested against a third-party writer, not its own.
# Idempotent: installs only what is missing. Runs as root (CI and developer machines are root).
set -euo pipefail

missing=()
command -v hivexsh >/dev/null 2>&1 || missing+=(libhivex-bin)
command -v hivexregedit >/dev/null 2>&1 || missing+=(libwin-hivex-perl)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "hivex deps: all present"
    exit 0
fi

echo "hivex deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"

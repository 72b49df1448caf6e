#!/usr/bin/env bash
# Installs what agent/tests/discovery_netns.rs needs to build test hosts in network namespaces:
# iproute2 (ip netns, veth), tcpdump (counting the SYNs actually sent) and Debian's ieee-data
# (the IEEE OUI registry the agent names MAC vendors from). Idempotent; CI runs it as root.
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
[ -x /usr/bin/tcpdump ] || [ -x /usr/sbin/tcpdump ] || missing+=(tcpdump)
[ -e /usr/share/ieee-data/oui.txt ] || missing+=(ieee-data)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "netns test tools ready: $(ip -V)"

#!/usr/bin/env bash
# Installs the real peers that agent/tests/live_services.rs starts on loopback:
# OpenSSH's sshd and ssh-keygen, openssl (s_server), python3 (http.server).
# Idempotent: installs only what is missing. Runs as root (CI and developer machines are root).
set -euo pipefail

missing=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "services deps: all present"
    exit 0
fi

echo "services deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

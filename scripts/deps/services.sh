#!/usr/bin/env bash
# Installs the real peers that agent/tests/live_services.rs starts on loopback:
# OpenSSH's sshd and ssh-keygen, openssl (s_server), python3 (http.server), and the
# client-speaks-first services the probes must name: Redis, PostgreSQL, xrdp (RDP's X.224
# negotiation; MQTT's mosquitto comes from ot-peers.sh). The packaged daemons are stopped and disabled: the tests start their own on
# 127.0.66.x, and a fresh machine should not keep extra services listening.
# Idempotent: installs only what is missing. Runs as root (CI and developer machines are root).
set -euo pipefail

missing=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
[ -x /usr/sbin/xrdp ] || missing+=(xrdp)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "services deps: all present"
    exit 0
fi

echo "services deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now redis-server postgresql xrdp xrdp-sesman >/dev/null 2>&1 || true
fi

#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries for the store's conformance suite and the
# several-collectors tests: they run initdb and postgres themselves (as user postgres, on a
# unix socket in a scratch directory, no TCP except where a test asks for 127.0.0.1) and
# remove the cluster when they end. The packaged cluster that Debian creates is stopped and
# kept from starting, so nothing listens on 5432.
# Idempotent: installs only what is missing. Runs as root.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
    echo "postgres deps: all present ($(ls -d /usr/lib/postgresql/*/bin | head -1))"
    exit 0
fi

echo "postgres deps: installing postgresql"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# policy-rc.d 101: the package's cluster is not started during installation.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql
[ "$created_policy" = 1 ] && rm -f "$policy"
# The default cluster is not needed; keep it from starting at boot.
for conf in /etc/postgresql/*/main/start.conf; do
    [ -f "$conf" ] && echo manual >"$conf"
done
ls /usr/lib/postgresql/*/bin/initdb

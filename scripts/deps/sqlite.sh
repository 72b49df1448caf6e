#!/usr/bin/env bash
# Installs Debian's sqlite3 command-line shell, which tests/tests/e2e/audit.rs uses the way an
# intruder with access to the database file would: to edit an audit row behind the collector's
# back (dropping the append-only trigger first).
# Idempotent: installs only what is missing. Runs as root (CI and developer machines are root).
set -euo pipefail

if command -v sqlite3 >/dev/null 2>&1; then
    echo "sqlite deps: all present"
    exit 0
fi

echo "sqlite deps: installing sqlite3"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends sqlite3

#!/bin/sh
# Run by the tillsyn-collector package before removal (.deb prerm, .rpm %preun on erase):
# stops and disables the unit. The state directory holds the CA and the database: it is kept
# even on purge (delete it yourself once a backup exists); a purge removes the system user
# only when that directory is gone.
set -e
if [ -d /run/systemd/system ]; then
    systemctl disable --now tillsyn-collector.service >/dev/null 2>&1 || true
fi
exit 0

#!/bin/sh
# Run by the tillsyn-agent package before removal (.deb prerm, .rpm %preun on erase): stops
# and disables the units. The state directory (key, certificates, spool) and the user stay
# until a purge (.deb postrm).
set -e
if [ -d /run/systemd/system ]; then
    systemctl disable --now tillsyn-agent.service tillsyn-agent-enroll.service >/dev/null 2>&1 || true
fi
exit 0

#!/bin/sh
# Run by the tillsyn-collector package after installation (.deb postinst, .rpm %post); safe
# to run again. Creates the system user and the state directory (0700), initialises the
# collector there on first install (CA, server certificate for this host's name, database),
# and enables the unit. Edit /var/lib/tillsyn-collector/collector.toml (`listen`,
# `server_names`) before agents connect; see /usr/share/doc/tillsyn-collector/INSTALL.md.
set -e
STATE=/var/lib/tillsyn-collector

if ! getent passwd tillsyn-collector >/dev/null; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "Tillsyn collector" tillsyn-collector
fi
install -d -m 0700 -o tillsyn-collector -g tillsyn-collector "$STATE"
if [ ! -e "$STATE/collector.toml" ]; then
    /usr/bin/tillsyn-collector --dir "$STATE" init
    chown -R tillsyn-collector:tillsyn-collector "$STATE"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl enable tillsyn-collector.service >/dev/null 2>&1 || true
    systemctl restart tillsyn-collector.service || true
fi
exit 0

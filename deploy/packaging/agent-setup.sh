#!/bin/sh
# Run by the tillsyn-agent package after installation (.deb postinst, .rpm %post); safe to run
# again by hand. Creates the system user and the state directory (0700), enables the units,
# and enrolls when /etc/default/tillsyn-agent names a collector and a token. It never fails
# the installation over enrollment, and never starts an unenrolled agent: the unit requires
# the certificate (ConditionPathExists), so a host without one is skipped, not restarted.
set -e
STATE=/var/lib/tillsyn-agent
ENV_FILE=/etc/default/tillsyn-agent

if ! getent passwd tillsyn-agent >/dev/null; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "Tillsyn agent" tillsyn-agent
fi
install -d -m 0700 -o tillsyn-agent -g tillsyn-agent "$STATE"
[ -e "$ENV_FILE" ] && chmod 0600 "$ENV_FILE"

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl enable tillsyn-agent-enroll.service tillsyn-agent.service >/dev/null 2>&1 || true
fi

if [ -f "$ENV_FILE" ] && grep -Eq '^(export )?TILLSYN_COLLECTOR=.' "$ENV_FILE" \
    && grep -Eq '^(export )?TILLSYN_ENROLL_TOKEN=.' "$ENV_FILE"; then
    # Idempotent: an enrolled host prints "already enrolled". Run as root so it can read the
    # environment file (0600); the state is handed to the agent's user afterwards.
    if /usr/bin/tillsyn-agent --dir "$STATE" enroll --env-file "$ENV_FILE"; then
        chown -R tillsyn-agent:tillsyn-agent "$STATE"
    else
        echo "tillsyn-agent: enrollment failed (see above); the agent stays stopped. Fix $ENV_FILE and run: /usr/lib/tillsyn/agent-setup.sh" >&2
    fi
else
    echo "tillsyn-agent: not enrolled. Write TILLSYN_COLLECTOR, TILLSYN_ENROLL_TOKEN and TILLSYN_CA to $ENV_FILE and run: /usr/lib/tillsyn/agent-setup.sh" >&2
fi

if [ -d /run/systemd/system ] && [ -e "$STATE/agent.pem" ]; then
    systemctl restart tillsyn-agent.service || true
fi
exit 0

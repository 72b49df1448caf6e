#!/usr/bin/env bash
# CI's package check. Packages the binaries `cargo test` built (dev profile, nothing rebuilt),
# inspects the packages (dpkg-deb -c, rpm -qlp), then on this machine: installs the agent
# .deb without an environment file (not enrolled, nothing started), installs the collector
# .deb (user, initialised state directory), serves it on loopback, installs the agent again
# with /etc/default/tillsyn-agent naming that collector and a token (the postinst enrolls),
# checks units, users and modes, lets the agent report once, and purges both packages,
# checking that nothing is left. Refuses to run where Tillsyn is installed for real.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/packages"
fail() { echo "package check: $*" >&2; exit 1; }

for package in tillsyn-agent tillsyn-collector; do
    if dpkg -s "$package" >/dev/null 2>&1; then fail "$package is installed here; not touching it"; fi
done
[ -e /etc/default/tillsyn-agent ] && fail "/etc/default/tillsyn-agent exists; not touching it"
[ -e /var/lib/tillsyn-agent ] && fail "/var/lib/tillsyn-agent exists; not touching it"
[ -e /var/lib/tillsyn-collector ] && fail "/var/lib/tillsyn-collector exists; not touching it"

rm -f "$out"/tillsyn-*.deb "$out"/tillsyn-*.rpm
scripts/package.sh --profile dev --no-build --only linux
agent_deb=$(ls "$out"/tillsyn-agent_*.deb)
collector_deb=$(ls "$out"/tillsyn-collector_*.deb)
agent_rpm=$(ls "$out"/tillsyn-agent-*.rpm)
collector_rpm=$(ls "$out"/tillsyn-collector-*.rpm)

echo "==> inspecting the packages"
has() { grep -Eq "$2" <<<"$1" || fail "$3: missing $2"; }
listing=$(dpkg-deb -c "$agent_deb")
for path in ./usr/bin/tillsyn-agent ./lib/systemd/system/tillsyn-agent.service \
    ./lib/systemd/system/tillsyn-agent-enroll.service ./usr/lib/tillsyn/agent-setup.sh; do
    has "$listing" " $path\$" "$agent_deb"
done
has "$listing" '^-rwxr-xr-x .* ./usr/bin/tillsyn-agent$' "$agent_deb (mode 0755)"
listing=$(dpkg-deb -c "$collector_deb")
for path in ./usr/bin/tillsyn-collector ./lib/systemd/system/tillsyn-collector.service; do
    has "$listing" " $path\$" "$collector_deb"
done
listing=$(rpm -qlp "$agent_rpm" 2>/dev/null)
for path in /usr/bin/tillsyn-agent /usr/lib/systemd/system/tillsyn-agent.service \
    /usr/lib/systemd/system/tillsyn-agent-enroll.service /usr/lib/tillsyn/agent-setup.sh; do
    has "$listing" "^$path\$" "$agent_rpm"
done
has "$(rpm -qp --scripts "$agent_rpm" 2>/dev/null)" 'agent-setup.sh' "$agent_rpm (%post)"
listing=$(rpm -qlp "$collector_rpm" 2>/dev/null)
has "$listing" '^/usr/bin/tillsyn-collector$' "$collector_rpm"
has "$(rpm -qp --scripts "$collector_rpm" 2>/dev/null)" 'collector-setup.sh' "$collector_rpm (%post)"
# The collector links the system OpenSSL (passkeys, webauthn-rs): both packages must say so
# (cargo-deb's $auto from the binary's needs; cargo-generate-rpm's automatic requires).
has "$(dpkg-deb -f "$collector_deb" Depends)" 'libssl3' "$collector_deb (Depends)"
has "$(rpm -qpR "$collector_rpm" 2>/dev/null)" '^libssl\.so\.3' "$collector_rpm (Requires)"

serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
    dpkg --purge tillsyn-agent tillsyn-collector >/dev/null 2>&1 || true
    rm -f /etc/default/tillsyn-agent
    rm -rf /var/lib/tillsyn-collector /var/lib/tillsyn-agent
    for user in tillsyn-agent tillsyn-collector; do
        getent passwd "$user" >/dev/null && userdel "$user" 2>/dev/null || true
    done
}
trap cleanup EXIT
mode_owner() { stat -c '%a %U' "$1"; }
expect() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

echo "==> agent .deb without an environment file: installed, not enrolled, not started"
log=$(dpkg -i "$agent_deb" 2>&1) || fail "dpkg -i $agent_deb: $log"
has "$log" 'not enrolled' "the agent's postinst"
getent passwd tillsyn-agent >/dev/null || fail "no tillsyn-agent user"
expect "$(mode_owner /var/lib/tillsyn-agent)" "700 tillsyn-agent" /var/lib/tillsyn-agent
[ -e /var/lib/tillsyn-agent/agent.pem ] && fail "enrolled without an environment file"
grep -q '^ConditionPathExists=/var/lib/tillsyn-agent/agent.pem$' /lib/systemd/system/tillsyn-agent.service \
    || fail "the installed unit would start an unenrolled agent"
systemd-analyze verify /lib/systemd/system/tillsyn-agent.service \
    /lib/systemd/system/tillsyn-agent-enroll.service || fail "installed agent units do not verify"
dpkg --purge tillsyn-agent >/dev/null
getent passwd tillsyn-agent >/dev/null && fail "purge left the tillsyn-agent user"
[ -e /var/lib/tillsyn-agent ] && fail "purge left /var/lib/tillsyn-agent"
[ -e /usr/bin/tillsyn-agent ] && fail "purge left /usr/bin/tillsyn-agent"

echo "==> collector .deb: user, initialised state directory, served on loopback"
dpkg -i "$collector_deb" >/dev/null 2>&1 || fail "dpkg -i $collector_deb"
expect "$(mode_owner /var/lib/tillsyn-collector)" "700 tillsyn-collector" /var/lib/tillsyn-collector
expect "$(mode_owner /var/lib/tillsyn-collector/ca.key)" "600 tillsyn-collector" ca.key
expect "$(mode_owner /var/lib/tillsyn-collector/tillsyn.db)" "600 tillsyn-collector" tillsyn.db
systemd-analyze verify /lib/systemd/system/tillsyn-collector.service || fail "collector unit"
as_collector() { runuser -u tillsyn-collector -- tillsyn-collector --dir /var/lib/tillsyn-collector "$@"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fifo=$(mktemp -u); mkfifo "$fifo"
runuser -u tillsyn-collector -- tillsyn-collector --dir /var/lib/tillsyn-collector serve \
    --listen "127.0.0.1:$port" >"$fifo" 2>/dev/null &
serve_pid=$!
read -r line <"$fifo"; rm -f "$fifo"
has "$line" '^listening on' "collector serve"
token=$(as_collector token create --uses 2 --label site=package-check --name package-check | tail -1)

echo "==> agent .deb with /etc/default/tillsyn-agent: the postinst enrolls"
(umask 077; printf 'TILLSYN_COLLECTOR=https://127.0.0.1:%s\nTILLSYN_ENROLL_TOKEN=%s\nTILLSYN_CA=/var/lib/tillsyn-collector/ca.pem\n' \
    "$port" "$token" >/etc/default/tillsyn-agent)
log=$(dpkg -i "$agent_deb" 2>&1) || fail "dpkg -i $agent_deb: $log"
has "$log" 'enrolled as agent' "the agent's postinst"
expect "$(mode_owner /var/lib/tillsyn-agent)" "700 tillsyn-agent" /var/lib/tillsyn-agent
expect "$(mode_owner /var/lib/tillsyn-agent/agent.key)" "600 tillsyn-agent" agent.key
expect "$(mode_owner /var/lib/tillsyn-agent/agent.pem)" "644 tillsyn-agent" agent.pem
expect "$(stat -c %a /etc/default/tillsyn-agent)" "600" /etc/default/tillsyn-agent
# Installing again enrolls nothing: the token keeps its second use.
log=$(dpkg -i "$agent_deb" 2>&1) || fail "dpkg -i (again): $log"
has "$log" 'already enrolled' "the agent's postinst on reinstall"
has "$(as_collector token list --format json)" '"uses_left": 1' "token list after two installs"
runuser -u tillsyn-agent -- tillsyn-agent --dir /var/lib/tillsyn-agent run --once \
    >/dev/null 2>&1 || fail "the packaged agent does not report"
has "$(as_collector agent list --format json)" '"site": "package-check"' "agent list"

echo "==> purge: nothing left"
dpkg --purge tillsyn-agent >/dev/null
for path in /usr/bin/tillsyn-agent /lib/systemd/system/tillsyn-agent.service /var/lib/tillsyn-agent; do
    [ -e "$path" ] && fail "purge left $path"
done
getent passwd tillsyn-agent >/dev/null && fail "purge left the tillsyn-agent user"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
dpkg --purge tillsyn-collector >/dev/null
[ -e /usr/bin/tillsyn-collector ] && fail "purge left /usr/bin/tillsyn-collector"
# The collector's state (CA, database) is kept on purge by design; the check removes it.
[ -e /var/lib/tillsyn-collector/ca.key ] || fail "purge deleted the collector's CA"
echo "package check passed"

#!/usr/bin/env bash
# Benchmarks a discovery sweep of 127.0.1.0/24 over the common OT ports, with real peers on a
# few addresses, and prints:
#   - packets the agent actually sent (captured on lo: TCP SYNs, TCP segments carrying payload,
#     UDP datagrams, all towards the swept /24) against the --pps cap: the overall rate and the
#     busiest one-second window;
#   - the agent's peak resident memory (VmHWM).
# Needs root (tcpdump, ports below 1024) and scripts/deps/ot-peers.sh. Only loopback is touched.
#
#   scripts/bench-discovery.sh            # builds the release binary first
#   PPS=200 PER_HOST_PPS=10 scripts/bench-discovery.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${TILLSYN_OT_VENV:-/opt/tillsyn-ot-venv}"
PPS="${PPS:-100}"
PER_HOST_PPS="${PER_HOST_PPS:-10}"
NET="127.0.1.0/24"
PORTS="502,102,44818,44818/enip-udp,4840,1883,161/snmp,47808/bacnet,80,554,21,22,23,9100"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${TILLSYN_AGENT_BIN:-$TARGET_DIR/release/tillsyn-agent}"
PEERS="$ROOT/agent/tests/peers"

[ "$(id -u)" -eq 0 ] || { echo "bench-discovery: needs root (tcpdump, ports < 1024)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || { echo "bench-discovery: $VENV missing; run scripts/deps/ot-peers.sh" >&2; exit 1; }
command -v tcpdump >/dev/null || { echo "bench-discovery: tcpdump missing; run scripts/deps/ot-peers.sh" >&2; exit 1; }
if [ -z "${TILLSYN_AGENT_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p tillsyn-agent --quiet)
fi

WORK="$(mktemp -d /tmp/tillsyn-bench.XXXXXX)"
PEER_PIDS=()
TCPDUMP_PID=""
cleanup() {
  for pid in "${PEER_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_peer NAME PROGRAM ARGS...: runs a peer in its own session and waits for READY.
start_peer() {
  local name="$1"; shift
  setsid "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PEER_PIDS+=("$!")
  for _ in $(seq 1 600); do
    grep -q READY "$WORK/$name.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-discovery: peer $name never got ready:" >&2
  cat "$WORK/$name.err" >&2
  exit 1
}

PY="$VENV/bin/python"
start_peer modbus "$PY" "$PEERS/modbus_peer.py" 127.0.1.10 502 "ACME Automation" PC-42 2.7 "ACME Controller" AC-500
start_peer s7 "$PY" "$PEERS/s7_peer.py" 127.0.1.11 102
start_peer enip "$PY" "$PEERS/enip_peer.py" 127.0.1.12 44818 1 14 "BENCH PLC" 305419896 770
start_peer opcua "$PY" "$PEERS/opcua_peer.py" 127.0.1.13 4840 "Bench UA" anonymous
start_peer mqtt "$PY" "$PEERS/mosquitto_peer.py" 127.0.1.14 1883 true
start_peer snmp "$PY" "$PEERS/snmp_peer.py" 127.0.1.15 161 public "Bench switch" 1.3.6.1.4.1.9.1.1 bench-sw
start_peer bacnet "$PY" "$PEERS/bacnet_peer.py" 127.0.1.16 47808 77 AHU-1 "Bench Controls" BC-1 1.0

# Agent -> swept /24 only (the kernel picks 127.0.0.1 as source, so replies are not counted):
# SYNs, TCP segments with payload, UDP datagrams.
FILTER="dst net $NET and ((tcp[tcpflags] & (tcp-syn|tcp-ack)) == tcp-syn or (tcp and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 0) or udp)"
tcpdump -i lo -n -U -w "$WORK/sweep.pcap" "$FILTER" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/tcpdump.err" && break; sleep 0.1; done

"$BIN" discover --target "$NET" --ports "$PORTS" --pps "$PPS" --per-host-pps "$PER_HOST_PPS" \
  --timeout-ms 2000 --json >"$WORK/report.json" &
AGENT_PID=$!
HWM_KB=0
while kill -0 "$AGENT_PID" 2>/dev/null; do
  hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status" 2>/dev/null || true)"
  [ -n "$hwm" ] && [ "$hwm" -gt "$HWM_KB" ] && HWM_KB="$hwm"
  sleep 0.05
done
wait "$AGENT_PID"
sleep 1
kill "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null || true; TCPDUMP_PID=""

tcpdump -r "$WORK/sweep.pcap" -n -tt 2>/dev/null | awk '{print $1}' >"$WORK/times.txt"
python3 - "$WORK/times.txt" "$WORK/report.json" "$PPS" "$PER_HOST_PPS" "$HWM_KB" <<'PY'
import json, sys
times_path, report_path, pps, per_host, hwm_kb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
times = [float(t) for t in open(times_path) if t.strip()]
report = json.load(open(report_path))
n = len(times)
span = times[-1] - times[0] if n > 1 else 0.0
rate = (n - 1) / span if span > 0 else 0.0
# Busiest one-second window (two pointers over the sorted capture).
best, j = 0, 0
for i in range(n):
    while times[i] - times[j] >= 1.0:
        j += 1
    best = max(best, i - j + 1)
# Steady state: the middle 80 % of packets, without start-up and the last hosts' tail.
lo, hi = n // 10, n - n // 10
steady = (hi - lo - 1) / (times[hi - 1] - times[lo]) if hi - lo > 1 else 0.0
# Shortest time spanned by pps + 1 consecutive packets: >= 1 s means no 1 s window on the wire
# held more than pps packets; a hair under 1 s is send jitter after the limiter's grant.
spans = [times[i + pps] - times[i] for i in range(n - pps)]
min_span = min(spans) if spans else float("inf")
devices = report["devices"]
identified = sorted({s["protocol"] for d in devices for s in d["services"] if s["identified"]})
print(f"sweep               {report['hosts_probed']} hosts x 14 ports of 127.0.1.0/24")
print(f"cap                 {pps} pps global, {per_host} pps per host")
print(f"packets captured    {n} (agent counted {report['packets_sent']})")
print(f"duration            {span:.2f} s")
print(f"measured rate       {rate:.2f} pps = {100 * rate / pps:.1f} % of cap")
print(f"steady-state rate   {steady:.2f} pps (middle 80 % of packets)")
print(f"busiest 1 s window  {best} packets (shortest span of {pps + 1} packets: {min_span * 1000:.1f} ms)")
print(f"devices found       {len(devices)}; identified protocols: {', '.join(identified)}")
print(f"agent peak RSS      {hwm_kb / 1024:.1f} MiB (VmHWM)")
# The limiter grants at most pps packets per 1 s window; on the wire, send jitter after the
# grant may squeeze one more into a window by a millisecond or two, never more.
ok = 0.90 * pps <= rate <= pps and (best <= pps or min_span >= 0.99)
print("verdict             " + ("OK: rate within the cap and >= 90 % of it; no burst above the cap" if ok else "OUT OF BOUNDS"))
sys.exit(0 if ok else 1)
PY

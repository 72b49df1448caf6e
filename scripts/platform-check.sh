#!/usr/bin/env bash
# Proves the agent builds and reports its basics on Windows and macOS (issue 4), from this
# Linux machine, with what scripts/deps/cross.sh installs. Exits non-zero on any problem.
#
# Windows (x86_64-pc-windows-gnu, built with Debian's MinGW-w64, run under Debian's wine64):
#   1. `tillsyn-agent.exe inventory --json`: the OS frame says Windows and has hostname, CPU and
#      memory; the Windows facts come from wine's registry through the Win32 registry API, and
#      nothing is read from the Linux root that wine shows as Z:. In wine's fresh prefix RDP is
#      off and no remote login service is configured, so `mfa` is `unknown`.
#   2. `wine reg add` turns RDP on with NLA off, adds an Uninstall entry, sets SChannel's
#      server TLS 1.0/1.1 off and registers OpenSSH Server (its `sshd_config` written to
#      C:\ProgramData\ssh): the inventory reads them back (the entry as a package, `mfa`
#      absent with the RDP values and the SSH key-only path as evidence); then TLS 1.0 on makes `transit_encryption`
#      plaintext, naming the SChannel value.
#   3. The real path: a Linux `tillsyn-collector` (init, serve on 127.0.0.1, token create); the
#      Windows agent under wine enrolls into its default state directory
#      (`C:\ProgramData\Tillsyn\agent`) and sends one report with `run --once`;
#      `tillsyn-collector assets --format json` holds the Windows host with its OS and with
#      `mfa` and `transit_encryption` decided (absent, plaintext) from the registry; BitLocker
#      stays `unknown` (wine has no manage-bde or BitLocker WMI).
# macOS (x86_64-apple-darwin): `cargo check` only, with zig as the C compiler for ring. No
#   `cargo build`: linking needs the Apple SDK, which is not redistributable and not here. Tried
#   with zig as the linker too: it finds no libiconv (Rust's std) and no libobjc (sysinfo's
#   objc2), and the frameworks sysinfo links (CoreFoundation, IOKit) come from the same SDK. So
#   nothing is run on macOS.
#
# The wine prefix, collector and agent directories live in one temporary directory, removed on
# exit with the collector and wineserver this script started. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIG_VENV="${TILLSYN_ZIG_VENV:-/opt/tillsyn-zig-venv}"
WINE=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver64
HINT="run scripts/deps/cross.sh (as root) to install it"

fail() {
    echo "platform-check: FAIL: $*" >&2
    exit 1
}

# Each step prints its wall time ("done in N s"), so CI logs show where the minutes go.
step_started=0
step() {
    step_started=$SECONDS
    echo "==> platform-check: $*"
}
step_done() {
    echo "    done in $((SECONDS - step_started)) s"
}

# Prerequisites: a missing tool fails with the install hint, never a skip.
installed_targets="$(rustup target list --installed 2>/dev/null)" || fail "rustup not found; $HINT"
for target in x86_64-pc-windows-gnu x86_64-apple-darwin; do
    grep -qx "$target" <<<"$installed_targets" || fail "Rust target $target missing; $HINT"
done
command -v x86_64-w64-mingw32-gcc >/dev/null || fail "x86_64-w64-mingw32-gcc missing; $HINT"
[ -x "$WINE" ] && [ -x "$WINESERVER" ] || fail "wine64 missing ($WINE); $HINT"
[ -x "$ZIG_VENV/bin/cc-x86_64-macos" ] || fail "zig C compiler wrapper missing; $HINT"
command -v python3 >/dev/null || fail "python3 missing; $HINT"

target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

# A warning in the agent's own code on these targets is a cfg-gating mistake: fail on it.
# (Per-target flags, so the Linux build's cache is untouched; dependencies' lints are capped.)
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-D warnings"
export CARGO_TARGET_X86_64_APPLE_DARWIN_RUSTFLAGS="-D warnings"

work="$(mktemp -d "${TMPDIR:-/tmp}/tillsyn-platform-check.XXXXXX")"
collector_pid=""
export WINEPREFIX="$work/wine"
# Quiet wine's debug channels; no Mono or Gecko installer prompts for a console program.
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
    if [ -n "$collector_pid" ]; then
        kill "$collector_pid" 2>/dev/null || true
        wait "$collector_pid" 2>/dev/null || true
    fi
    if [ -d "$WINEPREFIX" ]; then
        "$WINESERVER" -k 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
step "macOS: cargo check --target x86_64-apple-darwin -p tillsyn-agent"
CC_x86_64_apple_darwin="$ZIG_VENV/bin/cc-x86_64-macos" \
    cargo check --locked --target x86_64-apple-darwin -p tillsyn-agent ||
    fail "the agent does not compile for macOS"
step_done

# ---------------------------------------------------------------------------------------------
step "Windows: cargo build --target x86_64-pc-windows-gnu -p tillsyn-agent"
cargo build --locked --target x86_64-pc-windows-gnu -p tillsyn-agent ||
    fail "the agent does not build for Windows"
agent_exe="$target_dir/x86_64-pc-windows-gnu/debug/tillsyn-agent.exe"
[ -f "$agent_exe" ] || fail "no $agent_exe after the build"
step_done

step "Linux: cargo build -p tillsyn-collector (the peer the Windows agent reports to)"
cargo build --locked -p tillsyn-collector || fail "the collector does not build"
collector="$target_dir/debug/tillsyn-collector"
step_done

# ---------------------------------------------------------------------------------------------
step "wine: a fresh prefix in $WINEPREFIX"
# wineboot's own complaints (no display, no 32-bit rundll32) are expected on a server and
# harmless for a console program; whether the prefix works is proved by the next steps.
timeout -k 10 300 "$WINE" wineboot --init >"$work/wineboot.log" 2>&1 || true
[ -d "$WINEPREFIX/drive_c/windows/system32" ] ||
    { cat "$work/wineboot.log" >&2; fail "wineboot did not create a prefix"; }
# Wine 8.0 plays Windows 7 by default; Rust's Windows targets support Windows 10 and later.
"$WINE" winecfg /v win10 || fail "winecfg /v win10"
# Rust's std needs bcryptprimitives.dll, which wine 8.0 lacks: see the source's header.
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror \
    -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c -ladvapi32 || fail "cannot build the bcryptprimitives shim"
step_done

# Runs the Windows agent under wine; stdout and stderr pass through. The time limit only keeps
# a hung wine from holding CI for its whole budget; every step here takes seconds.
agent() {
    timeout -k 10 300 "$WINE" "$agent_exe" "$@"
}

# A Linux path as wine's Windows path on drive Z: (the Linux root).
winpath() {
    printf 'Z:%s' "${1//\//\\}"
}

# ---------------------------------------------------------------------------------------------
step "Windows: tillsyn-agent.exe inventory --json under wine"
agent inventory --json >"$work/inventory.json" 2>"$work/inventory.err" ||
    { cat "$work/inventory.err" >&2; fail "inventory --json exited non-zero under wine"; }
python3 - "$work/inventory.json" <<'EOF' || fail "the Windows inventory is not what it should be"
import json, sys

inventory = json.load(open(sys.argv[1]))
host = inventory["host"]
problems = []
if host["os_name"] != "Windows":
    problems.append(f"os_name is {host['os_name']!r}, not 'Windows'")
if not host["os_version"].startswith("10 "):
    problems.append(f"os_version is {host['os_version']!r}, not the Windows 10 wine plays")
for key in ("hostname", "architecture", "cpu_model"):
    if not host[key]:
        problems.append(f"{key} is empty")
for key in ("cpu_count", "memory_total_bytes"):
    if not host[key] > 0:
        problems.append(f"{key} is {host[key]}")
# Nothing may come from the Linux root that wine shows as Z: (the Linux collectors' categories).
linux = [o for o in inventory["observations"]
         if o["category"] in ("sshd", "pam", "account", "listener", "volume", "unit", "kernel")]
if linux:
    problems.append(f"{len(linux)} Linux observations on Windows: {linux[:3]}")
categories = {o["category"] for o in inventory["observations"]}
for category in ("windows_host", "windows_service", "schannel", "rdp"):
    if category not in categories:
        problems.append(f"no {category} observation from the registry")
controls = {c["name"]: c for c in inventory["controls"]}
for name in ("mfa", "transit_encryption", "rest_encryption"):
    if controls.get(name, {}).get("state") != "unknown":
        problems.append(f"control {name} is {controls.get(name)}, not unknown in a fresh prefix")
if "no remote login path" not in controls.get("mfa", {}).get("reason", ""):
    problems.append(f"mfa: {controls.get('mfa')}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"    {host['os_name']} {host['os_version']} on {host['hostname']}: "
      f"{host['cpu_count']} x {host['cpu_model']}, {host['memory_total_bytes']} bytes, "
      f"controls {', '.join(n + '=' + c['state'] for n, c in controls.items())}")
EOF
step_done

# ---------------------------------------------------------------------------------------------
step "Windows: keys set with wine reg add change the verdicts"
TS='HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server'
SCHANNEL='HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols'
UNINSTALL='HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\TillsynPlatformCheck'
reg_add() {
    "$WINE" reg add "$@" /f >/dev/null || fail "wine reg add $*"
}
reg_add "$TS" /v fDenyTSConnections /t REG_DWORD /d 0
reg_add "$TS\WinStations\RDP-Tcp" /v UserAuthentication /t REG_DWORD /d 0
reg_add "$UNINSTALL" /v DisplayName /t REG_SZ /d "Tillsyn platform check"
reg_add "$UNINSTALL" /v DisplayVersion /t REG_SZ /d 1.2.3
reg_add "$SCHANNEL\TLS 1.0\Server" /v Enabled /t REG_DWORD /d 0
reg_add "$SCHANNEL\TLS 1.1\Server" /v Enabled /t REG_DWORD /d 0
# OpenSSH Server for Windows: its service and C:\ProgramData\ssh\sshd_config, keys only.
reg_add 'HKLM\SYSTEM\CurrentControlSet\Services\sshd' /v Type /t REG_DWORD /d 16
reg_add 'HKLM\SYSTEM\CurrentControlSet\Services\sshd' /v Start /t REG_DWORD /d 2
mkdir -p "$WINEPREFIX/drive_c/ProgramData/ssh"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' \
    >"$WINEPREFIX/drive_c/ProgramData/ssh/sshd_config"
agent inventory --json >"$work/inventory-rdp.json" 2>"$work/inventory.err" ||
    { cat "$work/inventory.err" >&2; fail "inventory --json exited non-zero under wine"; }
reg_add "$SCHANNEL\TLS 1.0\Server" /v Enabled /t REG_DWORD /d 1
agent inventory --json >"$work/inventory-tls10.json" 2>"$work/inventory.err" ||
    { cat "$work/inventory.err" >&2; fail "inventory --json exited non-zero under wine"; }
python3 - "$work/inventory-rdp.json" "$work/inventory-tls10.json" <<'EOF' || fail "the registry keys did not change the verdicts"
import json, sys

rdp = json.load(open(sys.argv[1]))
tls10 = json.load(open(sys.argv[2]))
problems = []
controls = {c["name"]: c for c in rdp["controls"]}
mfa = controls["mfa"]
sources = [e["source"] + " " + e["detail"] for e in mfa["evidence"]]
if mfa["state"] != "absent" or "NLA off" not in mfa["reason"]:
    problems.append(f"mfa with RDP on and NLA off: {mfa}")
for value in ("Terminal Server\\fDenyTSConnections REG_DWORD 0",
              "RDP-Tcp\\UserAuthentication REG_DWORD 0"):
    if not any(value in s for s in sources):
        problems.append(f"mfa evidence lacks {value}: {sources}")
if not any("/ProgramData/ssh/sshd_config" in s and "publickey needs key" in s for s in sources):
    problems.append(f"mfa evidence lacks the OpenSSH path from C:\\ProgramData: {sources}")
transit = controls["transit_encryption"]
if transit["state"] != "unknown" or "TLS 1.2 or later" not in transit["reason"] \
        or "OpenSSH Server (SSH)" not in transit["reason"]:
    problems.append(f"transit with TLS 1.0/1.1 off: {transit}")
packages = {o["name"]: o for o in rdp["observations"] if o["category"] == "package"}
entry = packages.get("Tillsyn platform check")
if entry is None or entry["value"]["version"] != "1.2.3":
    problems.append(f"the Uninstall entry is not a package: {sorted(packages)}")
transit = {c["name"]: c for c in tls10["controls"]}["transit_encryption"]
if transit["state"] != "plaintext" or "TLS 1.0" not in transit["reason"] or not any(
        "TLS 1.0\\Server\\Enabled" in e["source"] for e in transit["evidence"]):
    problems.append(f"transit with TLS 1.0 on: {transit}")
if problems:
    sys.exit("\n".join(problems))
print(f"    mfa {mfa['state']} ({mfa['reason']}); transit {transit['state']} ({transit['reason']})")
EOF
step_done

# ---------------------------------------------------------------------------------------------
step "Linux collector: init, serve on 127.0.0.1, token create"
collector_dir="$work/collector"
"$collector" --dir "$collector_dir" init --server-name 127.0.0.1 >/dev/null ||
    fail "collector init"
"$collector" --dir "$collector_dir" serve --listen 127.0.0.1:0 \
    >"$work/serve.out" 2>"$work/serve.err" &
collector_pid=$!
# The first stdout line is "listening on ADDR" once the socket is bound.
address=""
for _ in $(seq 1 600); do
    address="$(sed -n 's/^listening on //p' "$work/serve.out")"
    [ -n "$address" ] && break
    kill -0 "$collector_pid" 2>/dev/null ||
        { cat "$work/serve.err" >&2; fail "the collector exited before listening"; }
    sleep 0.1
done
[ -n "$address" ] || { cat "$work/serve.err" >&2; fail "the collector did not listen in 60 s"; }
token="$("$collector" --dir "$collector_dir" token create | tail -n 1 | tr -d '[:space:]')"
[ -n "$token" ] || fail "token create printed no token"
step_done

step "Windows: enroll and run --once under wine, against https://$address"
# No --dir: the Windows default state directory, C:\ProgramData\Tillsyn\agent, which is the
# prefix's drive_c.
unset TILLSYN_AGENT_DIR
agent enroll --collector "https://$address" --token "$token" \
    --ca "$(winpath "$collector_dir/ca.pem")" --label platform=windows ||
    fail "enroll under wine"
[ -f "$WINEPREFIX/drive_c/ProgramData/Tillsyn/agent/agent.toml" ] ||
    fail "enroll did not write C:\\ProgramData\\Tillsyn\\agent\\agent.toml"
agent run --once || fail "run --once under wine"
step_done

step "Linux collector: the Windows host is stored with its OS"
"$collector" --dir "$collector_dir" assets --format json >"$work/assets.json" ||
    fail "collector assets"
python3 - "$work/assets.json" "$work/inventory.json" <<'EOF' || fail "the Windows host is not stored as it should be"
import json, sys

assets = json.load(open(sys.argv[1]))
inventory = json.load(open(sys.argv[2]))
hosts = [a for a in assets if a.get("facts", {}).get("os_name") == "Windows"]
if len(hosts) != 1:
    sys.exit(f"expected one Windows host among {len(assets)} assets, found {len(hosts)}:\n"
             + json.dumps(assets, indent=1)[:4000])
host = hosts[0]
facts = host["facts"]
problems = []
if host["hostname"] != inventory["host"]["hostname"]:
    problems.append(f"hostname {host['hostname']!r} != {inventory['host']['hostname']!r}")
for key in ("cpu_count", "memory_total_bytes"):
    if not facts[key] > 0:
        problems.append(f"{key} is {facts[key]}")
states = {c["name"]: c["state"] for c in host.get("controls", [])}
# Decided from wine's registry as set above; wine has no BitLocker to read.
expected = {"mfa": "absent", "transit_encryption": "plaintext", "rest_encryption": "unknown"}
for name, state in expected.items():
    if states.get(name) != state:
        problems.append(f"control {name} stored as {states.get(name)!r}, not {state!r}")
if problems:
    sys.exit("\n".join(problems))
print(f"    stored asset {host['asset_id']}: {host['hostname']}, "
      f"{facts['os_name']} {facts['os_version']}, controls {states}")
EOF
step_done

echo "platform-check: ok (Windows built, registry read and verdicts changed, enrolled and reported under wine;" \
     "macOS compile-checked only) in $SECONDS s"

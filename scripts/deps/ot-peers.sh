#!/usr/bin/env bash
# Installs the real OT peers that agent/tests/discovery_peers.rs and scripts/bench-discovery.sh
# talk to: a Python venv with the protocol stacks, Debian's mosquitto, and tcpdump for the
# packet-rate benchmark. Idempotent: re-running only fills in what is missing.
# CI runs every scripts/deps/*.sh as root.
set -euo pipefail

VENV="${TILLSYN_OT_VENV:-/opt/tillsyn-ot-venv}"

# Versions pinned to the ones the integration tests were run against.
PIP_PACKAGES=(
  "pymodbus==3.16.1"
  "python-snap7==3.3.0"
  "cpppo==5.2.5"
  "asyncua==2.1.0"
  "snmpsim==1.2.2"
  "pysmi==2.0.0"
  "bacpypes3==0.0.110"
  "pyftpdlib==2.2.0"
)
# Real device walks (cameras, switches, routers, firewalls, UPSes) that snmpsim serves as
# recordings. Installed without its dependencies: it pins pysmi<2, which would downgrade the
# pysmi above; the recordings are plain .snmprec(.bz2) files and need no code of it.
SNMPSIM_DATA="snmpsim-data==1.0.1"
# ONVIF peers: IPyCam's WS-Discovery responder and ONVIF device service, installed without its
# dependencies (OpenCV is large and only its video pipeline needs it; its config module
# imports numpy, so numpy comes on its own), and the WSDiscovery package's publisher.
ONVIF_PACKAGES=("numpy==2.3.5" "WSDiscovery==2.1.2" "ifaddr==0.2.0")
ONVIF_NODEPS=("ipycam==1.3.0")

apt_missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_missing+=(mosquitto)
command -v tcpdump >/dev/null 2>&1 || [ -x /usr/sbin/tcpdump ] || [ -x /usr/bin/tcpdump ] || apt_missing+=(tcpdump)
command -v python3 >/dev/null 2>&1 || apt_missing+=(python3 python3-venv)
# The ONVIF test runs its peer in a network namespace of its own (unshare from util-linux, ip).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || apt_missing+=(iproute2)
# Banner peers: OpenSSH's sshd and GNU inetutils' telnetd; RTSP peer: GStreamer's RTSP server,
# driven from Debian's own python3 through GObject introspection.
[ -x /usr/sbin/sshd ] || apt_missing+=(openssh-server)
[ -x /usr/sbin/telnetd ] || apt_missing+=(inetutils-telnetd)
# The RTSP peer's test pattern is JPEG over RTP (jpegenc, rtpjpegpay: plugins-good).
[ -e /usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstrtp.so ] || apt_missing+=(gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
[ -e /usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib ] || \
  ls /usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib >/dev/null 2>&1 || apt_missing+=(gir1.2-gst-rtsp-server-1.0)
/usr/bin/python3 -c 'import gi' >/dev/null 2>&1 || apt_missing+=(python3-gi)
# RTSPS peer: GLib's TLS backend (GnuTLS), which GStreamer's RTSP server needs for TLS.
ls /usr/lib/*/gio/modules/libgiognutls.so >/dev/null 2>&1 || apt_missing+=(glib-networking)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${apt_missing[@]}"
fi

# Debian starts mosquitto as a service on install; the tests run their own brokers on loopback
# addresses, so the packaged one is not needed (and would hold 1883 on all addresses).
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import pymodbus, snap7, cpppo, asyncua, snmpsim, bacpypes3, pyftpdlib' >/dev/null 2>&1; then
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "${PIP_PACKAGES[@]}"
fi
if ! "$VENV/bin/python" -c 'import snmpsim_data' >/dev/null 2>&1; then
  "$VENV/bin/pip" install --quiet --no-deps "$SNMPSIM_DATA"
fi
if ! "$VENV/bin/python" -c 'import importlib.util, numpy, wsdiscovery, sys; sys.exit(importlib.util.find_spec("ipycam") is None)' >/dev/null 2>&1; then
  "$VENV/bin/pip" install --quiet "${ONVIF_PACKAGES[@]}"
  "$VENV/bin/pip" install --quiet --no-deps "${ONVIF_NODEPS[@]}"
fi
"$VENV/bin/python" -c 'import pymodbus, snap7, cpppo, asyncua, snmpsim, bacpypes3, pyftpdlib, snmpsim_data, wsdiscovery; print("ot peers ready:", pymodbus.__version__)'

"""SNMP peer for discovery tests: snmpsim's command responder serving one recording.

usage: snmp_peer.py HOST PORT COMMUNITY SYSDESCR SYSOBJECTID SYSNAME
The community is the recording's file name (snmpsim's convention). Prints READY once the agent
answers a GET; stops the responder when killed.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# v2c GET sysDescr.0 with community "public", used only to see that the responder is up.
PROBE = bytes.fromhex("302602010104067075626c6963a019020101020100020100300e300c06082b060102010101000500")


def main() -> None:
    host, port, community, descr, object_id, name = sys.argv[1:7]
    workdir = tempfile.mkdtemp(prefix="tillsyn-snmp-")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    with open(os.path.join(data, f"{community}.snmprec"), "w", encoding="utf-8") as f:
        f.write(f"1.3.6.1.2.1.1.1.0|4|{descr}\n1.3.6.1.2.1.1.2.0|6|{object_id}\n1.3.6.1.2.1.1.5.0|4|{name}\n")
    binary = os.path.join(os.path.dirname(sys.executable), "snmpsim-command-responder")
    responder = subprocess.Popen(
        [
            binary,
            f"--data-dir={data}",
            f"--cache-dir={os.path.join(workdir, 'cache')}",
            f"--agent-udpv4-endpoint={host}:{port}",
            "--process-user=root",
            "--process-group=root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    signal.signal(signal.SIGTERM, lambda *_: (responder.terminate(), sys.exit(0)))
    probe = PROBE.replace(b"public", community.encode()) if len(community) == 6 else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    for _ in range(300):
        if responder.poll() is not None:
            sys.exit(f"snmpsim exited with {responder.returncode}")
        if probe is None:
            time.sleep(3)
            break
        sock.sendto(probe, (host, int(port)))
        try:
            sock.recv(65535)
            break
        except OSError:
            time.sleep(0.1)
    print("READY", flush=True)
    try:
        responder.wait()
    finally:
        responder.terminate()
        shutil.rmtree(workdir, ignore_errors=True)


main()

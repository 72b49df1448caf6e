"""Runs snmpsim's command responder for the SNMP peers (snmp_peer.py, snmpsim_data_peer.py):
starts it on a data directory, prints READY once it answers an SNMPv3 engine discovery, and
stops it (and removes the work directory) when the peer is killed."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

# nmap's SNMPv3GetRequest: an unauthenticated, reportable GetRequest without varbinds. Any
# SNMPv3 engine answers it with a Report, whatever community or user it is configured with.
DISCOVERY = bytes.fromhex(
    "303a020103300f02024a69020300ffe30401040201030410300e0400020100020100040004000400"
    "301204000400a00c020237f00201000201003000"
)


def serve(host: str, port: str, workdir: str, data: str, extra_args=()) -> None:
    binary = os.path.join(os.path.dirname(sys.executable), "snmpsim-command-responder")
    responder = subprocess.Popen(
        [
            binary,
            *extra_args,
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
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    while True:
        if responder.poll() is not None:
            sys.exit(f"snmpsim exited with {responder.returncode}")
        sock.sendto(DISCOVERY, (host, int(port)))
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

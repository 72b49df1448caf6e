"""SNMP peer for discovery tests: snmpsim's command responder serving real device walks from
the `snmpsim-data` package (installed by scripts/deps/ot-peers.sh), with a fixed SNMPv3 engine id.

usage: snmpsim_data_peer.py HOST PORT ENGINE_ID RECORDING...
       snmpsim_data_peer.py --value RECORDING OID
RECORDING is a path inside snmpsim_data/data without its extension, e.g. `camera/hikvision`;
its community is the file's base name (snmpsim's convention), e.g. `hikvision`. ENGINE_ID is
hex. Prints READY once the responder answers an SNMPv3 engine discovery; stops it when killed.
The --value form prints one recorded value (hex-encoded strings decoded), so a test can compare
what the agent reports with what the recording holds.
"""
import bz2
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import snmpsim_data

DATA = os.path.join(os.path.dirname(snmpsim_data.__file__), "data")
# nmap's SNMPv3GetRequest: an unauthenticated, reportable GetRequest without varbinds. Any
# SNMPv3 engine answers it with a Report, whatever community or user it is configured with.
DISCOVERY = bytes.fromhex(
    "303a020103300f02024a69020300ffe30401040201030410300e0400020100020100040004000400"
    "301204000400a00c020237f00201000201003000"
)


def recording_path(recording: str) -> str:
    for ext in (".snmprec", ".snmprec.bz2"):
        path = os.path.join(DATA, recording + ext)
        if os.path.exists(path):
            return path
    sys.exit(f"no recording {recording!r} in {DATA}")


def open_recording(path: str):
    return bz2.open(path, "rb") if path.endswith(".bz2") else open(path, "rb")


def recorded_value(recording: str, oid: str) -> str:
    path = recording_path(recording)
    with open_recording(path) as f:
        for raw in f:
            line = raw.decode("latin-1").rstrip("\r\n")
            name, _, rest = line.partition("|")
            if name != oid:
                continue
            tag, _, value = rest.partition("|")
            if tag.endswith("x"):
                return bytes.fromhex(value).decode("utf-8", errors="replace")
            return value
    sys.exit(f"{oid} not in {path}")


def serve(host: str, port: str, engine_id: str, recordings: list) -> None:
    workdir = tempfile.mkdtemp(prefix="tillsyn-snmpsim-data-")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    for recording in recordings:
        source = recording_path(recording)
        # Copied, not linked (snmpsim resolves links and would name the community after the
        # target's path), and decompressed: snmpsim seeks in a .bz2 recording through
        # Python's BZ2File, which decompresses from the start to go back, and that can outlast
        # a probe's timeout on a busy machine.
        target = os.path.join(data, os.path.basename(recording) + ".snmprec")
        with open_recording(source) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    binary = os.path.join(os.path.dirname(sys.executable), "snmpsim-command-responder")
    responder = subprocess.Popen(
        [
            binary,
            f"--v3-engine-id={engine_id}",
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


def main() -> None:
    if sys.argv[1] == "--value":
        print(recorded_value(sys.argv[2], sys.argv[3]))
        return
    host, port, engine_id = sys.argv[1:4]
    serve(host, port, engine_id, sys.argv[4:])


main()

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
import sys
import tempfile

import snmpsim_data
from snmpsim_responder import serve

DATA = os.path.join(os.path.dirname(snmpsim_data.__file__), "data")


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


def serve_recordings(host: str, port: str, engine_id: str, recordings: list) -> None:
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
    serve(host, port, workdir, data, [f"--v3-engine-id={engine_id}"])


def main() -> None:
    if sys.argv[1] == "--value":
        print(recorded_value(sys.argv[2], sys.argv[3]))
        return
    host, port, engine_id = sys.argv[1:4]
    serve_recordings(host, port, engine_id, sys.argv[4:])


main()

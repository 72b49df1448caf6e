"""SNMP peer for discovery tests: snmpsim's command responder serving one recording.

usage: snmp_peer.py HOST PORT COMMUNITY SYSDESCR SYSOBJECTID SYSNAME
The community is the recording's file name (snmpsim's convention). SYSDESCR and SYSNAME are
recorded hex-encoded (snmpsim's `4x` tag), so they may hold any bytes, control characters
included (the hostile-text tests use that). Prints READY once the agent answers; stops the
responder when killed.
"""
import os
import sys
import tempfile

from snmpsim_responder import serve


def main() -> None:
    host, port, community, descr, object_id, name = sys.argv[1:7]
    workdir = tempfile.mkdtemp(prefix="tillsyn-snmp-")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    with open(os.path.join(data, f"{community}.snmprec"), "w", encoding="utf-8") as f:
        descr_hex = descr.encode("utf-8", "surrogateescape").hex()
        name_hex = name.encode("utf-8", "surrogateescape").hex()
        f.write(f"1.3.6.1.2.1.1.1.0|4x|{descr_hex}\n1.3.6.1.2.1.1.2.0|6|{object_id}\n1.3.6.1.2.1.1.5.0|4x|{name_hex}\n")
    serve(host, port, workdir, data)


main()

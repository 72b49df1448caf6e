"""EtherNet/IP peer for discovery tests: cpppo's EtherNet/IP server (TCP and UDP) with a
configured Identity object.

usage: enip_peer.py HOST PORT VENDOR_NUMBER DEVICE_TYPE PRODUCT_NAME SERIAL REVISION
REVISION is a decimal 16-bit value, major in the low byte (cpppo's encoding): 770 (0x0302) = 2.3.
Prints READY once the TCP port accepts connections.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main() -> None:
    host, port, vendor, device_type, name, serial, revision = sys.argv[1:8]
    workdir = tempfile.mkdtemp(prefix="tillsyn-enip-")
    config = os.path.join(workdir, "identity.cfg")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            "[Identity]\n"
            f"Vendor Number = {vendor}\n"
            f"Device Type = {device_type}\n"
            f"Product Name = {name}\n"
            f"Serial Number = {serial}\n"
            f"Product Revision = {revision}\n"
        )
    server = subprocess.Popen(
        [sys.executable, "-m", "cpppo.server.enip", "-c", config, "--address", f"{host}:{port}", "Tag=INT[10]"],
        cwd=workdir,
    )
    signal.signal(signal.SIGTERM, lambda *_: (server.terminate(), sys.exit(0)))
    for _ in range(400):
        if server.poll() is not None:
            sys.exit(f"cpppo exited with {server.returncode}")
        try:
            socket.create_connection((host, int(port)), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    print("READY", flush=True)
    try:
        server.wait()
    finally:
        server.terminate()


main()

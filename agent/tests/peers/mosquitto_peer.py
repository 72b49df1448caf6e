"""MQTT peer for discovery tests: Debian's mosquitto broker on one loopback address.

usage: mosquitto_peer.py HOST PORT ANONYMOUS(true|false) [CERT_PEM KEY_PEM]
Writes a config to a temporary directory, runs mosquitto in the foreground, prints READY once
the port accepts connections, and stops the broker when killed. With CERT_PEM and KEY_PEM the
listener speaks TLS (mosquitto's own OpenSSL defaults) with that certificate; both are copied
into the broker's directory, readable by the unprivileged user mosquitto drops to.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main() -> None:
    host, port, anonymous = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    workdir = tempfile.mkdtemp(prefix="tillsyn-mqtt-")
    os.chmod(workdir, 0o755)
    config = os.path.join(workdir, "mosquitto.conf")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"listener {port} {host}\nallow_anonymous {anonymous}\npersistence false\nlog_dest stderr\n")
        if len(sys.argv) > 5:
            for name, source in (("certfile", sys.argv[4]), ("keyfile", sys.argv[5])):
                copy = os.path.join(workdir, f"{name}.pem")
                shutil.copyfile(source, copy)
                os.chmod(copy, 0o644)
                f.write(f"{name} {copy}\n")
    os.chmod(config, 0o644)
    broker = subprocess.Popen([binary, "-c", config])
    signal.signal(signal.SIGTERM, lambda *_: (broker.terminate(), sys.exit(0)))
    for _ in range(200):
        if broker.poll() is not None:
            sys.exit(f"mosquitto exited with {broker.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    print("READY", flush=True)
    try:
        broker.wait()
    finally:
        broker.terminate()
        shutil.rmtree(workdir, ignore_errors=True)


main()

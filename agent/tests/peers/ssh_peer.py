"""SSH peer for discovery tests: OpenSSH's sshd on one loopback address with a throw-away host
key (the test only reads the identification string).

usage: ssh_peer.py HOST PORT
Prints READY once the port accepts connections; stops sshd when killed.
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
    host, port = sys.argv[1], int(sys.argv[2])
    workdir = tempfile.mkdtemp(prefix="tillsyn-ssh-")
    key = os.path.join(workdir, "host_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    config = os.path.join(workdir, "sshd_config")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            f"ListenAddress {host}:{port}\nHostKey {key}\nPidFile {workdir}/sshd.pid\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        )
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config])
    signal.signal(signal.SIGTERM, lambda *_: (sshd.terminate(), sys.exit(0)))
    for _ in range(200):
        if sshd.poll() is not None:
            sys.exit(f"sshd exited with {sshd.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    print("READY", flush=True)
    try:
        sshd.wait()
    finally:
        sshd.terminate()
        shutil.rmtree(workdir, ignore_errors=True)


main()

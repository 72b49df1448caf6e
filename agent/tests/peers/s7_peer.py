"""S7comm peer for discovery tests: python-snap7's pure-Python S7 server.

usage: s7_peer.py HOST PORT
Prints READY once listening; runs until killed.
"""
import socket
import sys
import time

import snap7


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    server = snap7.server.Server()
    server.start_to(host, tcp_port=port)
    for _ in range(200):
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    print("READY", flush=True)
    while True:
        time.sleep(3600)


main()

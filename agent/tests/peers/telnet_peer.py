"""Telnet peer for discovery tests: GNU inetutils telnetd, started per connection the way inetd
does (the accepted socket becomes its stdin/stdout), with a login program that prints an issue
text and then waits like a login prompt.

usage: telnet_peer.py HOST PORT ISSUE
Prints READY once listening.
"""
import os
import socket
import subprocess
import sys


def main() -> None:
    host, port, issue = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(8)
    # The "login" program: the issue text, a prompt, then wait for input that never comes.
    login = f"/bin/sh -c 'printf \"%s\\r\\nlogin: \" \"{issue}\"; read -r _'"
    print("READY", flush=True)
    while True:
        conn, _ = listener.accept()
        fd = conn.fileno()
        subprocess.Popen(
            ["/usr/sbin/telnetd", "-h", "-E", login],
            stdin=fd,
            stdout=fd,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        conn.close()


main()

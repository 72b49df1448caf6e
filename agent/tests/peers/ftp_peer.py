"""FTP peer for discovery tests: pyftpdlib with a configured greeting.

usage: ftp_peer.py HOST PORT BANNER
Prints READY once listening.
"""
import sys
import tempfile

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> None:
    host, port, banner = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    authorizer = DummyAuthorizer()
    authorizer.add_user("operator", "not-used-by-tests", tempfile.mkdtemp(prefix="tillsyn-ftp-"))
    handler = FTPHandler
    handler.authorizer = authorizer
    handler.banner = banner
    server = FTPServer((host, port), handler)
    print("READY", flush=True)
    server.serve_forever()


main()

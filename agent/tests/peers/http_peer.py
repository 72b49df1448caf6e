"""HTTP peer for discovery tests: CPython's http.server serving one page with a title.

usage: http_peer.py HOST PORT TITLE
Prints READY once listening.
"""
import functools
import http.server
import sys
import tempfile


def main() -> None:
    host, port, title = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    root = tempfile.mkdtemp(prefix="tillsyn-http-")
    with open(f"{root}/index.html", "w", encoding="utf-8") as f:
        f.write(f"<html><head><title>{title}</title></head><body>ok</body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    print("READY", flush=True)
    server.serve_forever()


main()

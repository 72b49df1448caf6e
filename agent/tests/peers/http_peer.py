"""HTTP peer for discovery tests: CPython's http.server serving one page with a title.

usage: http_peer.py HOST PORT TITLE [CERT_PEM KEY_PEM [MAX_TLS_VERSION]]
With CERT_PEM and KEY_PEM the server speaks HTTPS through the stdlib's ssl module (OpenSSL);
MAX_TLS_VERSION (e.g. TLSv1) caps the version, with OpenSSL's security level lowered so that
TLS 1.0/1.1 can be negotiated at all, as an old device would. Prints READY once listening.
"""
import functools
import http.server
import ssl
import sys
import tempfile


def main() -> None:
    host, port, title = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    root = tempfile.mkdtemp(prefix="tillsyn-http-")
    with open(f"{root}/index.html", "w", encoding="utf-8") as f:
        f.write(f"<html><head><title>{title}</title></head><body>ok</body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    if len(sys.argv) > 5:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        if len(sys.argv) > 6:
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = ssl.TLSVersion[sys.argv[6]]
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("READY", flush=True)
    server.serve_forever()


main()

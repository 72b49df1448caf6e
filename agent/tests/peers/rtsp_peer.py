"""RTSP peer for discovery tests: GStreamer's RTSP server (gst-rtsp-server), driven from
Debian's python3 through GObject introspection (not the venv: gi comes from Debian).

usage: rtsp_peer.py HOST PORT [CERT_PEM KEY_PEM]
Prints READY once attached; runs until killed. OPTIONS needs no media, but a mount point is
configured so the server looks like a camera's. With CERT_PEM and KEY_PEM every connection
speaks RTSPS (TLS through GLib's GnuTLS backend, glib-networking) with that certificate.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    host, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( videotestsrc ! fakesink )")
    server.get_mount_points().add_factory("/stream1", factory)
    if len(sys.argv) > 4:
        auth = GstRtspServer.RTSPAuth()
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(sys.argv[3], sys.argv[4]))
        server.set_auth(auth)
    if server.attach(None) == 0:
        sys.exit("cannot attach the RTSP server")
    print("READY", flush=True)
    GLib.MainLoop().run()


main()

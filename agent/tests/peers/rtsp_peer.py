"""RTSP peer for discovery tests: GStreamer's RTSP server (gst-rtsp-server), driven from
Debian's python3 through GObject introspection (not the venv: gi comes from Debian).

usage: rtsp_peer.py HOST PORT [open|basic] [CERT_PEM KEY_PEM]
Mounts /stream1 (a live test pattern, RTP/JPEG). `open` (the default) lets anyone DESCRIBE it;
`basic` puts an RTSPAuth with HTTP Basic in front of the server and grants the mount to one
user only, so an anonymous DESCRIBE gets 401 with a Basic challenge. With CERT_PEM and KEY_PEM
every connection speaks RTSPS (TLS through GLib's GnuTLS backend, glib-networking) with that
certificate. Prints READY once attached; runs until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    host, port = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    mode = rest.pop(0) if rest and rest[0] in ("open", "basic") else "open"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true ! video/x-raw,format=I420,width=64,height=48,framerate=5/1 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    auth = None
    if mode == "basic":
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "operator")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic("operator", "not-sent-by-tests"), token)
        auth.set_realm("Ward 4 camera")
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(
            Gst.Structure.new_from_string("operator, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")
        )
        factory.set_permissions(permissions)
    if len(rest) == 2:
        auth = auth or GstRtspServer.RTSPAuth()
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(rest[0], rest[1]))
    if auth is not None:
        server.set_auth(auth)
    server.get_mount_points().add_factory("/stream1", factory)
    if server.attach(None) == 0:
        sys.exit("cannot attach the RTSP server")
    print("READY", flush=True)
    GLib.MainLoop().run()


main()

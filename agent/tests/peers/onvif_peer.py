"""ONVIF peer for discovery tests: IPyCam's (PyPI `ipycam`) WS-Discovery responder and ONVIF
device service, without its video pipeline.

usage: onvif_peer.py HOST HTTP_PORT NAME MANUFACTURER MODEL FIRMWARE SERIAL [USER PASSWORD]
Run it inside a network namespace of its own (the test does, with `unshare -n`): IPyCam's
WS-Discovery server binds 0.0.0.0:3702, joins the multicast group and announces itself with a
multicast Hello, none of which may reach a real network. With USER and PASSWORD, ONVIF requests
need a WS-Security UsernameToken and an anonymous one gets HTTP 401 with a SOAP fault.
Prints READY once both servers listen; runs until killed.

IPyCam's package __init__ imports its video stack (numpy, OpenCV); the ONVIF, discovery, HTTP
and config modules need none of it, so the package is entered without running __init__.
"""
import importlib.util
import sys
import threading
import types
from http.server import ThreadingHTTPServer


def ipycam_modules():
    spec = importlib.util.find_spec("ipycam")
    if spec is None:
        sys.exit("ipycam missing: run `sudo scripts/deps/ot-peers.sh`")
    package = types.ModuleType("ipycam")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["ipycam"] = package
    from ipycam.config import CameraConfig
    from ipycam.discovery import WSDiscoveryServer
    from ipycam.http import IPCameraHTTPHandler
    from ipycam.onvif import ONVIFService

    return CameraConfig, WSDiscoveryServer, IPCameraHTTPHandler, ONVIFService


def main() -> None:
    host, port, name, manufacturer, model, firmware, serial = sys.argv[1:8]
    user, password = (sys.argv[8], sys.argv[9]) if len(sys.argv) > 9 else ("", "")
    CameraConfig, WSDiscoveryServer, IPCameraHTTPHandler, ONVIFService = ipycam_modules()
    config = CameraConfig(
        name=name,
        manufacturer=manufacturer,
        model=model,
        firmware_version=firmware,
        serial_number=serial,
        local_ip=host,
        onvif_port=int(port),
        username=user,
        password=password,
    )
    onvif = ONVIFService(config)
    # The HTTP handler reaches the ONVIF service and the config through its `camera`.
    IPCameraHTTPHandler.camera = types.SimpleNamespace(onvif=onvif, config=config)
    http = ThreadingHTTPServer((host, int(port)), IPCameraHTTPHandler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    discovery = WSDiscoveryServer(onvif)
    discovery.start()
    print("READY", flush=True)
    discovery.join()


main()

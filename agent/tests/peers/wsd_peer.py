"""WS-Discovery peer for discovery tests: the WSDiscovery package's publisher (PyPI
`WSDiscovery`) announcing one ONVIF NetworkVideoTransmitter.

usage: wsd_peer.py XADDR SCOPE...
Run it inside a network namespace of its own (the test does, with `unshare -n`): the publisher
binds 0.0.0.0:3702, joins the multicast group on every interface and sends multicast Hello
messages, none of which may reach a real network. It answers a unicast Probe whose Types match
with a unicast ProbeMatch (after WS-Discovery's random delay of up to 500 ms).
Prints READY once published; runs until killed.
"""
import sys
import threading

from wsdiscovery import threaded
from wsdiscovery.publishing import ThreadedWSPublishing
from wsdiscovery.qname import QName
from wsdiscovery.scope import Scope

ONVIF_NETWORK = "http://www.onvif.org/ver10/network/wsdl"


def no_ipv6(_observer):
    raise OSError("IPv6 left out of the test")


def main() -> None:
    # The publisher's IPv6 thread binds [::]:3702 dual-stack and so receives the IPv4 Probe,
    # then fails to answer an IPv4 address from its IPv6 socket. Taking the library's own
    # "IPv6 not supported" path (an OSError when the thread is made) keeps it on IPv4.
    threaded.NetworkingThreadIPv6 = no_ipv6
    xaddr, scopes = sys.argv[1], sys.argv[2:]
    publisher = ThreadedWSPublishing()
    publisher.start()
    publisher.publishService(
        [QName(ONVIF_NETWORK, "NetworkVideoTransmitter", "dn")],
        [Scope(scope) for scope in scopes],
        [xaddr],
    )
    print("READY", flush=True)
    threading.Event().wait()


main()

"""BACnet/IP peer for discovery tests: a bacpypes3 device application.

usage: bacnet_peer.py HOST PORT INSTANCE OBJECT_NAME VENDOR_NAME MODEL_NAME FIRMWARE
Prints READY once bound; runs until killed.
"""
import asyncio
import sys

from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser


async def main() -> None:
    host, port, instance, name, vendor, model, firmware = sys.argv[1:8]
    args = SimpleArgumentParser().parse_args(
        ["--address", f"{host}/32:{port}", "--instance", instance, "--name", name, "--vendoridentifier", "999"]
    )
    app = Application.from_args(args)
    app.device_object.vendorName = vendor
    app.device_object.modelName = model
    app.device_object.firmwareRevision = firmware
    # The UDP endpoint is bound by now; yield once so the transport is up.
    await asyncio.sleep(0.2)
    print("READY", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())

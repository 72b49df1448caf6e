"""Modbus/TCP peer for discovery tests: pymodbus with a configured device identification.

usage: modbus_peer.py HOST PORT VENDOR PRODUCT_CODE REVISION PRODUCT_NAME MODEL_NAME
Prints READY once listening.
"""
import asyncio
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import StartAsyncTcpServer


async def main() -> None:
    host, port, vendor, code, revision, product, model = sys.argv[1:8]
    context = ModbusServerContext(
        devices=ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [0] * 10)), single=True
    )
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": vendor,
            "ProductCode": code,
            "MajorMinorRevision": revision,
            "ProductName": product,
            "ModelName": model,
        }
    )
    server = asyncio.ensure_future(StartAsyncTcpServer(context=context, identity=identity, address=(host, int(port))))
    # pymodbus has no "listening" callback: wait until a connect succeeds.
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    print("READY", flush=True)
    await server


asyncio.run(main())

"""OPC UA peer for discovery tests: an asyncua server with security policy None only.

usage: opcua_peer.py HOST PORT SERVER_NAME [anonymous|username]
Prints READY once listening; runs until killed.
"""
import asyncio
import sys

from asyncua import Server, ua


async def main() -> None:
    host, port, name = sys.argv[1], sys.argv[2], sys.argv[3]
    tokens = sys.argv[4] if len(sys.argv) > 4 else "anonymous"
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://{host}:{port}/tillsyn/")
    server.set_server_name(name)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if tokens == "username":
        server.set_identity_tokens([ua.UserNameIdentityToken])
    else:
        server.set_identity_tokens([ua.AnonymousIdentityToken])
    async with server:
        print("READY", flush=True)
        await asyncio.Event().wait()


asyncio.run(main())

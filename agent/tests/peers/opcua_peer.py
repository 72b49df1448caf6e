"""OPC UA peer for discovery tests: an asyncua server with security policy None only, or with
every policy asyncua supports.

usage: opcua_peer.py HOST PORT SERVER_NAME [anonymous|username] [secured]
With `secured` the server gets a fresh RSA-4096 certificate (made here with `cryptography`, an
asyncua dependency) and offers None plus the Basic256Sha256, Aes128Sha256RsaOaep and
Aes256Sha256RsaPss policies in Sign and SignAndEncrypt modes: seven endpoints, each carrying
the certificate, so the GetEndpoints response no longer fits one 8192-byte chunk.
Prints READY once listening; runs until killed.
"""
import asyncio
import datetime
import sys

from asyncua import Server, ua
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SECURED_POLICIES = [
    ua.SecurityPolicyType.NoSecurity,
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
]


def certificate(name: str, uri: str) -> tuple[bytes, bytes]:
    """A self-signed application instance certificate and its key, both DER."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.DER), der


async def main() -> None:
    host, port, name = sys.argv[1], sys.argv[2], sys.argv[3]
    tokens = sys.argv[4] if len(sys.argv) > 4 else "anonymous"
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://{host}:{port}/tillsyn/")
    server.set_server_name(name)
    if "secured" in sys.argv[5:]:
        cert, key = certificate(name, "urn:freeopcua:python:server")
        await server.load_certificate(cert)
        await server.load_private_key(key)
        server.set_security_policy(SECURED_POLICIES)
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if tokens == "username":
        server.set_identity_tokens([ua.UserNameIdentityToken])
    else:
        server.set_identity_tokens([ua.AnonymousIdentityToken])
    async with server:
        print("READY", flush=True)
        await asyncio.Event().wait()


asyncio.run(main())

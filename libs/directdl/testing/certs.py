"""Self-signed certificates made with `cryptography`, for TLS servers in tests."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _san(entry: str) -> x509.GeneralName:
    """ "IP:127.0.0.1" or "DNS:localhost"; a bare value is an IP if it parses as one."""
    kind, sep, value = entry.partition(":")
    if sep and kind.upper() == "DNS":
        return x509.DNSName(value)
    if sep and kind.upper() == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    try:
        return x509.IPAddress(ipaddress.ip_address(entry))
    except ValueError:
        return x509.DNSName(entry)


def make_self_signed(
    common_name: str,
    sans: list[str],
    days: int = 30,
    key_size: int = 2048,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    hash: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None = None,
) -> tuple[bytes, bytes]:
    """Return (cert_pem, key_pem): an RSA key and a CA:TRUE certificate signed by itself.

    `sans` entries look like "IP:127.0.0.1" or "DNS:localhost". `not_before`/`not_after`
    override the validity window (an expired or not-yet-valid certificate for tests);
    `hash` defaults to SHA-256.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    end = not_after or start + timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if sans:
        names = [_san(entry) for entry in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hash or hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem

"""Certificates made with `cryptography` for tests, including ones signed with MD5 or SHA-1."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

# Signature OIDs as DER. RSA ones are 1.2.840.113549.1.1.<arc> (md2 2, md5 4, sha1 5,
# sha256 11, sha384 12, sha512 13, sha224 14); ECDSA ones are 1.2.840.10045.4.1 (SHA-1)
# and 1.2.840.10045.4.3.<n> (SHA-2).
_PKCS1 = bytes.fromhex("06092a864886f70d0101")
RSA_SIGNATURE_ARC = {"md5": 4, "sha1": 5, "sha256": 11, "sha384": 12, "sha512": 13, "sha224": 14}
_ECDSA = {
    "sha1": bytes.fromhex("06072a8648ce3d0401"),
    "sha224": bytes.fromhex("06082a8648ce3d040301"),
    "sha256": bytes.fromhex("06082a8648ce3d040302"),
    "sha384": bytes.fromhex("06082a8648ce3d040303"),
    "sha512": bytes.fromhex("06082a8648ce3d040304"),
}


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


def resigned(
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    digest: hashes.HashAlgorithm,
    arc: int | None = None,
) -> bytes:
    """DER of `cert` signed again by `key` with `digest`, which cryptography may refuse to build.

    `cert` must carry a SHA-256 signature of the same kind as `key` (RSA or ECDSA; any signer).
    That algorithm inside its TBSCertificate is swapped for the one of `digest` (or, for RSA,
    for PKCS#1 arc `arc`, to make an algorithm cryptography does not know), the TBS signed
    again and the Certificate SEQUENCE assembled by hand. Issuer and subject are kept.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        old = _algorithm(_PKCS1 + bytes([RSA_SIGNATURE_ARC["sha256"]]), null_parameters=True)
        last = arc if arc is not None else RSA_SIGNATURE_ARC[digest.name]
        new = _algorithm(_PKCS1 + bytes([last]), null_parameters=True)
    else:
        old, new = _algorithm(_ECDSA["sha256"]), _algorithm(_ECDSA[digest.name])
    tbs = cert.tbs_certificate_bytes
    head = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    if tbs[head:].count(old) != 1:
        raise ValueError("the certificate must carry one SHA-256 signature of the key's kind")
    tbs = _der_tlv(0x30, tbs[head:].replace(old, new))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), digest)
    else:
        signature = key.sign(tbs, ec.ECDSA(digest))
    return _der_tlv(0x30, tbs + new + _der_tlv(0x03, b"\x00" + signature))


def _algorithm(oid: bytes, null_parameters: bool = False) -> bytes:
    """An AlgorithmIdentifier; RSA ones carry explicit NULL parameters, ECDSA ones none."""
    return _der_tlv(0x30, oid + (b"\x05\x00" if null_parameters else b""))


def _der_tlv(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content

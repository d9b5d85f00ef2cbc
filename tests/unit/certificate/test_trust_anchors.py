"""Weak hashes on a trust anchor's own signature: allowed only when it truly signed itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certificate.domain.anchors import is_self_signed
from certificate.domain.certificate import parse_certificate
from directdl.contracts.errors import InvalidMessage
from directdl_testing.certs import resigned

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
ROOT = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Root CA")])
LEAF = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mirror.example.org")])
WEAK = [pytest.param(hashes.SHA1(), id="sha1"), pytest.param(hashes.MD5(), id="md5")]


@cache
def rsa_key(bits: int = 2048, which: str = "anchor") -> rsa.RSAPrivateKey:
    """One key per (bits, which): `which` names a distinct key, such as an impostor's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key(which: str = "anchor") -> ec.EllipticCurvePrivateKey:
    """One key per `which`."""
    return ec.generate_private_key(ec.SECP256R1())


def built(
    signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    ca: bool = True,
) -> x509.Certificate:
    """A SHA-256 certificate; resigned() then swaps in the weak hash under test."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(0x5EED)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def anchor(digest: hashes.HashAlgorithm, bits: int = 2048) -> str:
    """A root CA that signed itself with `digest`, as PEM."""
    key = rsa_key(bits)
    return pem(resigned(built(key, ROOT, ROOT, key.public_key()), key, digest))


def pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()


def refused(text: str, *fragments: str) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse_certificate(text, NOW)
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value


@pytest.mark.parametrize("digest", WEAK)
def test_a_root_that_signed_itself_with_a_weak_hash_is_accepted(
    digest: hashes.HashAlgorithm,
) -> None:
    parsed = parse_certificate(anchor(digest), NOW)
    assert parsed.certificate.signature_hash_algorithm is not None
    assert parsed.certificate.signature_hash_algorithm.name == digest.name
    assert parsed.subject == parsed.issuer == "CN=Example Root CA"
    assert is_self_signed(parsed.certificate)


def test_an_ec_root_that_signed_itself_with_sha1_is_accepted() -> None:
    key = ec_key()
    cert = built(key, ROOT, ROOT, key.public_key())
    parsed = parse_certificate(pem(resigned(cert, key, hashes.SHA1())), NOW)
    assert parsed.key_description == "EC secp256r1"
    assert is_self_signed(parsed.certificate)


@pytest.mark.parametrize("digest", WEAK)
def test_a_weakly_signed_leaf_from_another_ca_is_refused(digest: hashes.HashAlgorithm) -> None:
    ca = rsa_key()
    leaf = built(ca, LEAF, ROOT, rsa_key(which="leaf").public_key(), ca=False)
    error = refused(
        pem(resigned(leaf, ca, digest)),
        f"signed with {digest.name}",
        "MD5 and SHA-1 signatures are refused",
    )
    assert error.details == {"field": "certificate", "signature_hash": digest.name}


@pytest.mark.parametrize("digest", WEAK)
def test_a_weak_signature_by_another_key_under_the_subjects_own_name_is_refused(
    digest: hashes.HashAlgorithm,
) -> None:
    """Issuer equal to subject is only a claim; the signature must verify with its own key."""
    impostor = rsa_key(which="impostor")
    cert = built(impostor, ROOT, ROOT, rsa_key().public_key())
    weak = x509.load_der_x509_certificate(resigned(cert, impostor, digest))
    assert weak.issuer == weak.subject
    assert not is_self_signed(weak)
    refused(pem(resigned(cert, impostor, digest)), f"signed with {digest.name}")


def test_an_ec_weak_signature_by_another_key_under_the_subjects_own_name_is_refused() -> None:
    impostor = ec_key("impostor")
    cert = built(impostor, ROOT, ROOT, ec_key().public_key())
    refused(pem(resigned(cert, impostor, hashes.SHA1())), "signed with sha1")


def test_a_weak_signature_by_its_own_key_under_another_issuer_name_is_refused() -> None:
    """Signed by its own key but naming another issuer: not self-issued, so not an anchor."""
    key = rsa_key()
    cert = built(key, LEAF, ROOT, key.public_key())
    refused(pem(resigned(cert, key, hashes.SHA1())), "signed with sha1")


def test_a_tampered_self_signed_root_is_refused() -> None:
    key = rsa_key()
    der = bytearray(resigned(built(key, ROOT, ROOT, key.public_key()), key, hashes.SHA1()))
    der[-1] ^= 0x01  # the last byte of the signature
    cert = x509.load_der_x509_certificate(bytes(der))
    assert not is_self_signed(cert)
    refused(pem(bytes(der)), "signed with sha1")


@pytest.mark.parametrize("digest", [*WEAK, pytest.param(hashes.SHA256(), id="sha256")])
def test_a_self_signed_root_with_a_1024_bit_rsa_key_is_refused(
    digest: hashes.HashAlgorithm,
) -> None:
    error = refused(anchor(digest, bits=1024), "RSA key of 1024 bits; at least 2048 required")
    assert error.details["key"] == "RSA 1024"


def test_a_sha256_self_signed_certificate_is_self_signed() -> None:
    key = rsa_key()
    assert is_self_signed(built(key, ROOT, ROOT, key.public_key()))
    assert not is_self_signed(built(key, LEAF, ROOT, key.public_key()))
    assert not is_self_signed(built(rsa_key(which="impostor"), ROOT, ROOT, key.public_key()))

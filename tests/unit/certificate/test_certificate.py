"""Reading an uploaded certificate: the forms CloudStack accepts, and each rule that refuses one."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certificate.domain.certificate import (
    MAX_SIZE,
    ParsedCertificate,
    parse_certificate,
    same_certificate,
)
from directdl.contracts.errors import InvalidMessage, MessageError, Unsupported
from directdl_testing.certs import make_self_signed, resigned

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
# What CertificateBuilder.sign accepts; SHA-1 and MD5 are not among them.
Digest = hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512


# --- building certificates -----------------------------------------------------------------


@cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def dsa_key() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=2048)


@cache
def ec_key(curve: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve]())


_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp192r1": ec.SECP192R1,
    "secp224r1": ec.SECP224R1,
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
}


def name(common_name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attributes)


def build(
    key: CertificateIssuerPrivateKeyTypes | None = None,
    *,
    public_key: CertificatePublicKeyTypes | None = None,
    subject: x509.Name | None = None,
    issuer: x509.Name | None = None,
    serial: int = 0x1F2E3D4C5B6A,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=30),
    hash: Digest | None = hashes.SHA256(),  # noqa: B008 - immutable
) -> x509.Certificate:
    """A certificate signed by `key`, for `public_key` (by default key's own: self-signed)."""
    key = key or rsa_key()
    subject = subject or name("downloads.example.org")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key or key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hash)
    )


def rsa_signed_with(last_oid_byte: int, digest: hashes.HashAlgorithm) -> bytes:
    """DER of a leaf that the CA key really signed with `digest`, which cryptography won't build.

    Issued by another CA, so it is no trust anchor and its signature is what trust rests on.
    """
    leaf = build(ca_key(), public_key=rsa_key().public_key(), issuer=name("Example Root CA"))
    return resigned(leaf, ca_key(), digest, arc=last_oid_byte)


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def pem_from_der(der: bytes) -> str:
    return pem_of(x509.load_der_x509_certificate(der))


def body_of(pem: str) -> str:
    """The base64 lines of a PEM, without BEGIN/END."""
    return "\n".join(line for line in pem.splitlines() if not line.startswith("-----"))


def key_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    fmt: serialization.PrivateFormat,
    encryption: serialization.KeySerializationEncryption | None = None,
) -> str:
    return key.private_bytes(Encoding.PEM, fmt, encryption or serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def cert() -> x509.Certificate:
    return build()


@pytest.fixture(scope="module")
def good(cert: x509.Certificate) -> str:
    return pem_of(cert)


def refused(
    text: str, *fragments: str, error: type[MessageError] = InvalidMessage, now: datetime = NOW
) -> MessageError:
    with pytest.raises(MessageError) as caught:
        parse_certificate(text, now)
    assert type(caught.value) is error, caught.value.message
    assert caught.value.details["field"] == "certificate"
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value


# --- the forms a certificate is accepted in --------------------------------------------------


def test_a_pem_from_make_self_signed_is_accepted() -> None:
    cert_pem, _ = make_self_signed("mirror.example.org", ["DNS:mirror.example.org"])
    parsed = parse_certificate(cert_pem.decode(), datetime.now(UTC))
    assert parsed.pem == cert_pem.decode()
    assert parsed.subject == "CN=mirror.example.org"
    assert parsed.key_description == "RSA 2048"


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda pem: pem, id="pem"),
        pytest.param(lambda pem: pem.rstrip("\n"), id="pem-without-final-newline"),
        pytest.param(lambda pem: pem.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda pem: pem.replace("\n", "\r"), id="cr"),
        pytest.param(lambda pem: "\n\n  \t" + pem + "\n \n\t ", id="surrounding-whitespace"),
        pytest.param(lambda pem: pem.replace("\n", ""), id="single-line-pem"),
        pytest.param(lambda pem: pem.replace("\n", " "), id="pem-lines-joined-by-spaces"),
        pytest.param(lambda pem: "  " + pem.replace("\n", "") + "  ", id="single-line-padded"),
        pytest.param(body_of, id="no-header-or-footer"),
        pytest.param(lambda pem: body_of(pem).replace("\n", "\r\n"), id="no-header-crlf"),
        pytest.param(lambda pem: body_of(pem).replace("\n", ""), id="bare-base64-one-line"),
        pytest.param(lambda pem: " \n" + body_of(pem).replace("\n", "") + "\n", id="bare-padded"),
        pytest.param(lambda pem: body_of(pem).replace("\n", " \t "), id="bare-with-inner-space"),
        pytest.param(
            lambda pem: "\n".join(line.strip() + "   " for line in pem.splitlines()),
            id="trailing-spaces-on-lines",
        ),
    ],
)
def test_each_form_cloudstack_accepts_gives_the_same_certificate(
    form: object, cert: x509.Certificate, good: str
) -> None:
    assert callable(form)
    parsed = parse_certificate(form(good), NOW)
    assert parsed.certificate == cert
    assert parsed.pem == good
    assert same_certificate(parsed.pem, good)


def test_the_pem_is_re_serialised_not_the_uploaded_text(good: str, cert: x509.Certificate) -> None:
    body = "".join(body_of(good).split())
    wrapped_at_76 = "\r\n".join(body[i : i + 76] for i in range(0, len(body), 76))
    upload = f"\t-----BEGIN CERTIFICATE-----\r\n{wrapped_at_76}\r\n-----END CERTIFICATE-----  "
    parsed = parse_certificate(upload, NOW)
    assert parsed.pem == cert.public_bytes(Encoding.PEM).decode("ascii")
    assert parsed.pem != upload
    assert parsed.pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert parsed.pem.endswith("-----END CERTIFICATE-----\n")
    assert {len(line) for line in parsed.pem.splitlines()[1:-2]} == {64}


def test_the_parsed_certificate_describes_itself() -> None:
    ca_key = rsa_key()
    leaf_key = ec_key("secp256r1")
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    end = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    cert = build(
        ca_key,
        public_key=leaf_key.public_key(),
        subject=name("mirror.example.org", "Example Mirrors"),
        issuer=name("Example Root CA", "Example"),
        serial=0xABCDEF0123456789,
        not_before=start,
        not_after=end,
    )
    parsed = parse_certificate(pem_of(cert), NOW)
    assert parsed.subject == "CN=mirror.example.org,O=Example Mirrors"
    assert parsed.issuer == "CN=Example Root CA,O=Example"
    assert parsed.serial == "ABCDEF0123456789"
    assert parsed.not_before == start
    assert parsed.not_after == end
    assert parsed.not_before.tzinfo is not None
    assert parsed.not_after.utcoffset() == timedelta(0)
    digest = hashlib.sha256(der_of(cert)).hexdigest().upper()
    assert parsed.fingerprint_sha256 == ":".join(re.findall("..", digest))
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", parsed.fingerprint_sha256)
    assert parsed.key_description == "EC secp256r1"


def test_a_small_serial_has_no_padding_or_colons() -> None:
    assert parse_certificate(pem_of(build(serial=10)), NOW).serial == "A"


def test_the_parsed_certificate_is_frozen(good: str) -> None:
    parsed = parse_certificate(good, NOW)
    assert isinstance(parsed, ParsedCertificate)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.certificate = build()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "described"),
    [
        (lambda: rsa_key(2048), "RSA 2048"),
        (lambda: rsa_key(3072), "RSA 3072"),
        (lambda: ec_key("secp256r1"), "EC secp256r1"),
        (lambda: ec_key("secp384r1"), "EC secp384r1"),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
    ],
)
def test_strong_keys_are_accepted(key: object, described: str) -> None:
    assert callable(key)
    assert parse_certificate(pem_of(build(key())), NOW).key_description == described


@pytest.mark.parametrize(
    "digest", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()], ids=lambda d: d.name
)
def test_sha2_signatures_are_accepted(digest: Digest) -> None:
    parse_certificate(pem_of(build(hash=digest)), NOW)


# --- size ------------------------------------------------------------------------------------


def test_sixty_four_kib_is_the_most(good: str) -> None:
    padded = good + " " * (MAX_SIZE - len(good))
    assert len(padded) == 64 * 1024
    parse_certificate(padded, NOW)
    error = refused(padded + " ", "65537 bytes", "at most 65536 (64 KiB)")
    assert error.details == {"field": "certificate", "size": 65537, "limit": 65536}


def test_size_is_checked_before_anything_else(good: str) -> None:
    key = key_pem(rsa_key(), serialization.PrivateFormat.PKCS8)
    refused(key + good + "x" * MAX_SIZE, "bytes", "64 KiB")
    refused("\x00" * (MAX_SIZE + 1), f"{MAX_SIZE + 1} bytes")


def test_size_counts_utf8_bytes_not_characters() -> None:
    refused("é" * 40_000, "80000 bytes")


# --- private keys ----------------------------------------------------------------------------

KEY_FORMATS = {
    "pkcs8": lambda: key_pem(rsa_key(), serialization.PrivateFormat.PKCS8),
    "rsa": lambda: key_pem(rsa_key(), serialization.PrivateFormat.TraditionalOpenSSL),
    "ec": lambda: key_pem(ec_key("secp256r1"), serialization.PrivateFormat.TraditionalOpenSSL),
    "encrypted": lambda: key_pem(
        rsa_key(),
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ),
    "openssh": lambda: key_pem(ec_key("secp256r1"), serialization.PrivateFormat.OpenSSH),
}


@pytest.mark.parametrize("kind", KEY_FORMATS)
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_private_key_beside_the_certificate_is_refused(kind: str, where: str, good: str) -> None:
    key = KEY_FORMATS[kind]()
    assert "PRIVATE KEY-----" in key
    text = key + good if where == "before" else good + key
    error = refused(text, "contains a private key; upload only the certificate")
    assert "PRIVATE KEY" in error.details["block"]


@pytest.mark.parametrize(
    ("header", "label"),
    [
        ("-----BEGIN ENCRYPTED PRIVATE KEY-----", "BEGIN ENCRYPTED PRIVATE KEY"),
        ("-----BEGIN RSA PRIVATE KEY-----", "BEGIN RSA PRIVATE KEY"),
        ("-----BEGIN EC PRIVATE KEY-----", "BEGIN EC PRIVATE KEY"),
        ("-----BEGIN DSA PRIVATE KEY-----", "BEGIN DSA PRIVATE KEY"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "BEGIN OPENSSH PRIVATE KEY"),
        ("-----BEGIN PRIVATE KEY-----", "BEGIN PRIVATE KEY"),
        ("-----begin rsa private key-----", "begin rsa private key"),
    ],
)
def test_a_private_key_header_anywhere_is_refused_and_named(
    header: str, label: str, good: str
) -> None:
    refused(f"{good}\n{header}\nMIIB\n", "contains a private key", repr(label))
    refused(header + good.replace("\n", ""), "contains a private key")
    refused(body_of(good) + "\n" + header, "contains a private key")


def test_the_private_key_is_reported_before_a_chain(good: str) -> None:
    key = KEY_FORMATS["pkcs8"]()
    refused(good + good + key, "contains a private key")


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("junk", "shown"),
    [
        ("hello", "'hello'"),
        ("subject=CN = downloads.example.org\n", "'subject=CN = downloads.example.org'"),
        ("Certificate:\n    Data:\n        Version: 3 (0x2)\n", "'Certificate:"),
        ("\ufeff", "'\\ufeff'"),
        ("x" * 100, "'" + "x" * 40 + "...'"),
    ],
)
def test_text_before_the_begin_line_is_refused(junk: str, shown: str, good: str) -> None:
    refused(junk + good, shown, "before the BEGIN CERTIFICATE line", "upload only the PEM block")


@pytest.mark.parametrize("junk", ["trailing", "# comment", ".", "-----"])
def test_text_after_the_end_line_is_refused(junk: str, good: str) -> None:
    refused(good + junk + "\n", repr(junk), "after the END CERTIFICATE line")


@pytest.mark.parametrize("count", [2, 3])
def test_a_chain_of_pem_blocks_is_refused(count: int, good: str) -> None:
    other = pem_of(build(serial=99))
    chain = (good + other) * (count // 2) + good * (count % 2)
    error = refused(chain, f"found {count} certificates; upload one at a time")
    assert error.details["count"] == count
    refused(chain.replace("\n", ""), f"found {count} certificates")


def test_a_chain_of_bare_der_is_refused(cert: x509.Certificate) -> None:
    both = base64.b64encode(der_of(cert) + der_of(build(serial=99))).decode()
    refused(both, "found 2 certificates; upload one at a time")


@pytest.mark.parametrize(
    ("block", "label"),
    [
        ("PUBLIC KEY", "'PUBLIC KEY'"),
        ("CERTIFICATE REQUEST", "'CERTIFICATE REQUEST'"),
        ("TRUSTED CERTIFICATE", "'TRUSTED CERTIFICATE'"),
        ("X509 CRL", "'X509 CRL'"),
        ("PKCS7", "'PKCS7'"),
    ],
)
def test_other_pem_blocks_are_refused(block: str, label: str, good: str) -> None:
    other = f"-----BEGIN {block}-----\nMIIB\n-----END {block}-----\n"
    refused(good + other, label, "PEM block", "only one CERTIFICATE block")
    refused(good.replace("CERTIFICATE", block), label)


@pytest.mark.parametrize(
    ("mangle", "counts"),
    [
        (lambda pem: pem.replace("-----END CERTIFICATE-----", ""), "1 BEGIN CERTIFICATE and 0 END"),
        (
            lambda pem: pem.replace("-----BEGIN CERTIFICATE-----", ""),
            "0 BEGIN CERTIFICATE and 1 END",
        ),
        (lambda pem: pem + "-----END CERTIFICATE-----\n", "1 BEGIN CERTIFICATE and 2 END"),
        (
            lambda pem: pem.replace("BEGIN", "@").replace("END", "BEGIN").replace("@", "END"),
            "1 BEGIN CERTIFICATE and 1 END",
        ),
    ],
)
def test_unbalanced_begin_and_end_lines_are_refused(mangle: object, counts: str, good: str) -> None:
    assert callable(mangle)
    refused(mangle(good), counts, "expected one of each, BEGIN first")


# --- not a certificate -----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\r\n\t "])
def test_empty_text_is_refused(text: str) -> None:
    assert refused(text).message == "certificate text is empty"


def test_an_empty_block_is_refused() -> None:
    refused("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----", "block is empty")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("not a certificate!", ("not an X.509 certificate", "'!' is not a base64 character")),
        ("https://example.org/ca.pem", ("not an X.509 certificate", "':'")),
        ("hello world", ("not an X.509 certificate: invalid base64",)),
        ("MI=IB", ("not an X.509 certificate: invalid base64",)),
        ("abcde", ("not an X.509 certificate: invalid base64",)),
        (base64.b64encode(b"plain text").decode(), ("not an X.509 certificate: ",)),
        (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), ("not an X.509 certificate: ",)),
    ],
)
def test_text_that_is_not_a_certificate_is_refused(text: str, fragments: tuple[str, ...]) -> None:
    refused(text, *fragments)


def test_a_bad_character_inside_the_block_is_refused(good: str) -> None:
    lines = good.splitlines()
    lines[3] = lines[3][:10] + "*" + lines[3][11:]
    refused("\n".join(lines), "not an X.509 certificate: '*' is not a base64 character")


def test_a_truncated_certificate_is_refused(good: str) -> None:
    lines = good.splitlines()
    refused("\n".join([*lines[:5], lines[-1]]), "not an X.509 certificate: ")


def test_der_with_trailing_bytes_is_refused(cert: x509.Certificate) -> None:
    text = base64.b64encode(der_of(cert) + b"\x00\x00").decode()
    error = refused(text, "not an X.509 certificate: ")
    assert error.details["reason"]


# --- validity --------------------------------------------------------------------------------


def test_an_expired_certificate_is_refused_with_its_date() -> None:
    end = datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC)
    error = refused(pem_of(build(not_after=end)), "expired on 2026-05-31 23:59:59 UTC")
    assert error.details["not_after"] == end.isoformat()


def test_a_certificate_is_valid_through_its_last_second() -> None:
    parse_certificate(pem_of(build(not_after=NOW)), NOW)
    refused(pem_of(build(not_after=NOW)), "expired on", now=NOW + timedelta(seconds=1))


def test_a_not_yet_valid_certificate_is_refused_with_its_date() -> None:
    start = datetime(2026, 7, 1, 8, 30, 0, tzinfo=UTC)
    error = refused(pem_of(build(not_before=start)), "not valid until 2026-07-01 08:30:00 UTC")
    assert error.details["not_before"] == start.isoformat()


def test_a_certificate_is_valid_from_its_first_second() -> None:
    parse_certificate(pem_of(build(not_before=NOW)), NOW)
    refused(pem_of(build(not_before=NOW)), "not valid until", now=NOW - timedelta(seconds=1))


def test_now_in_another_zone_is_compared_as_an_instant() -> None:
    end = NOW + timedelta(minutes=30)
    cert = pem_of(build(not_after=end))
    ahead = NOW.astimezone(timezone(timedelta(hours=5)))
    parse_certificate(cert, ahead)


def test_a_naive_now_is_a_programming_error(good: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_certificate(good, NOW.replace(tzinfo=None))


# --- keys and signatures ---------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1024, 2047])
def test_a_short_rsa_key_is_refused(bits: int) -> None:
    error = refused(pem_of(build(rsa_key(bits))), f"RSA key of {bits} bits; at least 2048 required")
    assert error.details["key"] == f"RSA {bits}"


def test_a_dsa_key_is_refused() -> None:
    error = refused(pem_of(build(dsa_key())), "DSA key (2048 bits)", "DSA keys are refused")
    assert error.details["key"] == "DSA 2048"


@pytest.mark.parametrize(("curve", "bits"), [("secp192r1", 192), ("secp224r1", 224)])
def test_an_ec_key_on_a_small_curve_is_refused(curve: str, bits: int) -> None:
    error = refused(
        pem_of(build(ec_key(curve))),
        f"EC key on {curve} ({bits} bits)",
        "curves of at least 256 bits required",
    )
    assert error.details["key"] == f"EC {curve}"


def test_a_key_that_cannot_sign_is_unsupported() -> None:
    leaf = build(rsa_key(), public_key=x25519.X25519PrivateKey.generate().public_key())
    refused(pem_of(leaf), "X25519 key, which cannot sign", error=Unsupported)


@pytest.mark.parametrize(
    ("oid_byte", "digest", "shown"),
    [(5, hashes.SHA1(), "sha1"), (4, hashes.MD5(), "md5")],
)
def test_sha1_and_md5_signatures_are_refused(
    oid_byte: int, digest: hashes.HashAlgorithm, shown: str
) -> None:
    der = rsa_signed_with(oid_byte, digest)
    cert = x509.load_der_x509_certificate(der)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == shown
    # A genuine signature, not just a relabelled one.
    ca_key().public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), digest
    )
    error = refused(pem_from_der(der), f"signed with {shown}; MD5 and SHA-1 signatures are refused")
    assert error.details["signature_hash"] == shown
    refused(base64.b64encode(der).decode(), f"signed with {shown}")


def test_cryptography_still_refuses_to_build_sha1_certificates() -> None:
    """Why rsa_signed_with exists; if this starts passing, build() could make them directly."""
    with pytest.raises(Exception, match=r"(?i)sha1"):
        build(hash=hashes.SHA1())  # type: ignore[arg-type]


def test_an_unknown_signature_algorithm_is_unsupported() -> None:
    der = rsa_signed_with(2, hashes.SHA256())  # md2WithRSAEncryption, unknown to cryptography
    error = refused(pem_from_der(der), "1.2.840.113549.1.1.2", error=Unsupported)
    assert error.details["signature_algorithm"] == "1.2.840.113549.1.1.2"


def test_validity_is_checked_before_the_key() -> None:
    expired_weak = build(rsa_key(1024), not_after=NOW - timedelta(days=1))
    refused(pem_of(expired_weak), "expired on")


# --- same_certificate ------------------------------------------------------------------------


def test_the_same_certificate_in_any_form_is_the_same(good: str) -> None:
    assert same_certificate(good, good)
    assert same_certificate(good, good.replace("\n", "\r\n"))
    assert same_certificate(good, body_of(good).replace("\n", ""))
    assert same_certificate(" " + good.replace("\n", "") + " ", good)


def test_different_certificates_differ(good: str) -> None:
    assert not same_certificate(good, pem_of(build(serial=99)))
    assert not same_certificate(good, pem_of(build(rsa_key(3072))))


def test_same_certificate_ignores_validity(good: str) -> None:
    expired = pem_of(build(not_after=NOW - timedelta(days=400), not_before=NOW - timedelta(500)))
    assert same_certificate(expired, expired)
    assert not same_certificate(expired, good)


def test_same_certificate_refuses_text_that_is_not_one(good: str) -> None:
    with pytest.raises(InvalidMessage, match=r"not an X\.509 certificate"):
        same_certificate(good, "garbage!")

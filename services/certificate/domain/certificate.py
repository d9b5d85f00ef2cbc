"""An uploaded X.509 certificate: how its text is read, and the rules it must pass to be trusted."""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from certificate.domain.anchors import is_self_signed
from directdl.contracts.errors import InvalidMessage, Unsupported

MAX_SIZE = 64 * 1024
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_HASHES = ("md5", "sha1")

# Any PEM private key: PKCS#8, ENCRYPTED, RSA, EC, DSA, OPENSSH. The PEM loader would skip it
# silently, and a private key in a trust store upload means it has leaked into the wrong place.
_PRIVATE_KEY = re.compile(r"BEGIN[^-\r\n]*PRIVATE[ \t]+KEY", re.IGNORECASE)
_MARKER = re.compile(r"-----(BEGIN|END) ([^-\r\n]*)-----")
_LABEL = "CERTIFICATE"
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/=")
_KEY_NAMES: tuple[tuple[type[Any], str], ...] = (
    (ed25519.Ed25519PublicKey, "Ed25519"),
    (ed448.Ed448PublicKey, "Ed448"),
    (x25519.X25519PublicKey, "X25519"),
    (x448.X448PublicKey, "X448"),
)


@dataclass(frozen=True)
class ParsedCertificate:
    """A certificate that passed every rule; everything else is read from the parsed object."""

    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        """Re-serialised from the parsed certificate, so nothing uploaded beside it survives."""
        return self.certificate.public_bytes(Encoding.PEM).decode("ascii")

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.certificate.issuer.rfc4514_string()

    @property
    def serial(self) -> str:
        return f"{self.certificate.serial_number:X}"

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def fingerprint_sha256(self) -> str:
        """Colon-separated upper-case hex, as keytool prints it."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def key_description(self) -> str:
        return _describe_key(self.certificate.public_key())


def parse_certificate(text: str, now: datetime) -> ParsedCertificate:
    """Read one PEM (or bare base64 DER) certificate and check it, or raise saying what is wrong."""
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    cert = _load(text)
    _check_validity(cert, now)
    _check_key(cert)
    _check_signature(cert)
    return ParsedCertificate(cert)


def same_certificate(a_pem: str, b_pem: str) -> bool:
    """Whether two texts hold the same certificate (same DER), however each was formatted."""
    return _load(a_pem).public_bytes(Encoding.DER) == _load(b_pem).public_bytes(Encoding.DER)


def _load(text: str) -> x509.Certificate:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SIZE:
        _refuse(
            f"certificate text is {size} bytes; at most {MAX_SIZE} (64 KiB) are accepted",
            size=size,
            limit=MAX_SIZE,
        )
    if not text.strip():
        _refuse("certificate text is empty")
    key = _PRIVATE_KEY.search(text)
    if key:
        _refuse(
            "certificate text contains a private key; upload only the certificate "
            f"(found a {key.group(0)!r} line)",
            block=key.group(0),
        )
    der = _der_from_text(text)
    certs = _chain(der)
    if len(certs) > 1:
        _refuse(_chain_message(len(certs)), count=len(certs))
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as err:
        _refuse(f"not an X.509 certificate: {err}", reason=str(err))


def _der_from_text(text: str) -> bytes:
    """The DER inside one PEM block, or inside bare base64 when there are no PEM lines at all."""
    markers = list(_MARKER.finditer(text))
    if not markers:
        return _decode(text)
    begins = [m for m in markers if m[1] == "BEGIN" and m[2] == _LABEL]
    if len(begins) > 1:
        _refuse(_chain_message(len(begins)), count=len(begins))
    others = [m[2] for m in markers if m[2] != _LABEL]
    if others:
        _refuse(
            f"certificate text contains a {others[0]!r} PEM block; "
            f"only one {_LABEL} block is accepted",
            block=others[0],
        )
    if [m[1] for m in markers] != ["BEGIN", "END"]:
        ends = len(markers) - len(begins)
        _refuse(
            f"certificate text has {len(begins)} BEGIN {_LABEL} and {ends} END {_LABEL} lines; "
            "expected one of each, BEGIN first"
        )
    begin, end = markers
    for where, outside in (
        ("before the BEGIN", text[: begin.start()]),
        ("after the END", text[end.end() :]),
    ):
        if outside.strip():
            _refuse(
                f"certificate text has {_snippet(outside)!r} {where} {_LABEL} line; "
                "upload only the PEM block",
                junk=_snippet(outside),
            )
    return _decode(text[begin.end() : end.start()])


def _decode(body: str) -> bytes:
    compact = "".join(body.split())
    if not compact:
        _refuse(f"not an X.509 certificate: the {_LABEL} block is empty")
    bad = next((c for c in compact if c not in _BASE64), None)
    if bad is not None:
        _refuse(f"not an X.509 certificate: {bad!r} is not a base64 character", reason="base64")
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as err:
        _refuse(f"not an X.509 certificate: invalid base64 ({err})", reason="base64")


def _chain(der: bytes) -> list[x509.Certificate]:
    """The certificates in DER that is certificates end to end; [] if it is anything else."""
    certs, pos = [], 0
    while pos < len(der):
        if pos + 2 > len(der):
            return []
        length, head = der[pos + 1], 2
        if length & 0x80:  # long form: the low bits say how many length bytes follow
            count = length & 0x7F
            if not 0 < count <= 4 or pos + 2 + count > len(der):
                return []
            length = int.from_bytes(der[pos + 2 : pos + 2 + count], "big")
            head += count
        try:
            certs.append(x509.load_der_x509_certificate(der[pos : pos + head + length]))
        except ValueError:
            return []
        pos += head + length
    return certs


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not_after < now:
        _refuse(f"certificate expired on {_when(not_after)}", not_after=not_after.isoformat())
    if not_before > now:
        _refuse(
            f"certificate is not valid until {_when(not_before)}",
            not_before=not_before.isoformat(),
        )


def _check_key(cert: x509.Certificate) -> None:
    try:
        key = cert.public_key()
    except UnsupportedAlgorithm as err:
        raise Unsupported(
            f"certificate has a public key of an unsupported type: {err}",
            details={"field": "certificate"},
        ) from err
    described = _describe_key(key)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        _refuse(
            f"certificate has an RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required",
            key=described,
        )
    if isinstance(key, dsa.DSAPublicKey):
        _refuse(
            f"certificate has a DSA key ({key.key_size} bits); DSA keys are refused, use RSA or EC",
            key=described,
        )
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        _refuse(
            f"certificate has an EC key on {key.curve.name} ({key.curve.key_size} bits); "
            f"curves of at least {MIN_EC_BITS} bits required",
            key=described,
        )
    if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
        raise Unsupported(
            f"certificate has an {described} key, which cannot sign; use RSA or EC",
            details={"field": "certificate", "key": described},
        )


def _check_signature(cert: x509.Certificate) -> None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm as err:
        oid = cert.signature_algorithm_oid.dotted_string
        raise Unsupported(
            f"certificate is signed with an unsupported algorithm ({oid})",
            details={"field": "certificate", "signature_algorithm": oid},
        ) from err
    # A trust anchor's signature on itself is never checked by anyone who trusts it, so a weak
    # hash there is harmless; on any other certificate it is what the trust rests on.
    if algorithm is not None and algorithm.name in WEAK_HASHES and not is_self_signed(cert):
        _refuse(
            f"certificate is signed with {algorithm.name}; MD5 and SHA-1 signatures are refused "
            "unless the certificate is self-signed",
            signature_hash=algorithm.name,
        )


def _describe_key(key: CertificatePublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return next((name for kind, name in _KEY_NAMES if isinstance(key, kind)), type(key).__name__)


def _chain_message(count: int) -> str:
    return f"certificate text is a chain: found {count} certificates; upload one at a time"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _snippet(text: str, limit: int = 40) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _refuse(message: str, **details: Any) -> NoReturn:
    raise InvalidMessage(message, details={"field": "certificate", **details})

"""Trust anchors: a self-signed certificate's signature on itself proves nothing, so it
is not held to the rules for signatures that vouch for someone else."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import SignatureAlgorithmOID

# The signature algorithms whose weak-hash forms are verified by hand: cryptography gives no
# padding for MD5 and SHA-1 ones, so which scheme each uses is read from its OID.
_RSA_PKCS1 = frozenset({SignatureAlgorithmOID.RSA_WITH_MD5, SignatureAlgorithmOID.RSA_WITH_SHA1})
_ECDSA = frozenset({SignatureAlgorithmOID.ECDSA_WITH_SHA1})


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether the issuer is the subject and the signature verifies with the certificate's key."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography refuses to verify MD5 and SHA-1 at all, so check those by hand.
        return _signed_by_own_key(cert)
    return True


def _signed_by_own_key(cert: x509.Certificate) -> bool:
    try:
        key = cert.public_key()
        algorithm = cert.signature_hash_algorithm
        oid = cert.signature_algorithm_oid
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey) and oid in _RSA_PKCS1:
            key.verify(cert.signature, cert.tbs_certificate_bytes, PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and oid in _ECDSA:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True

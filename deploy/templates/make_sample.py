"""Write the sample template and the TLS certificate that the compose `templates` server uses.

Run once by compose's `template-init` service with the project image's Python:
`python make_sample.py /srv/templates`. It writes

    www/sample.qcow2   an empty QCOW2 v3 image (64 MiB virtual, 256 KiB on disk)
    www/SHA256SUMS     its digest, for `directdl template register --checksum {SHA-256}...`
    www/templates.pem  the server's self-signed certificate, for `directdl cert upload`
    tls/templates.crt  the same certificate, and tls/templates.key, for nginx only

Files that exist are kept, so the certificate operators uploaded stays the one served.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST_NAME = "templates"  # the compose service name, which is its host name on the network
CLUSTER_BITS = 16  # 64 KiB clusters, qemu-img's default
CLUSTER = 1 << CLUSTER_BITS
VIRTUAL_SIZE = 64 << 20
CERT_DAYS = 365


def qcow2_image(virtual_size: int = VIRTUAL_SIZE) -> bytes:
    """An empty QCOW2 v3 image laid out as `qemu-img create -f qcow2` lays it out: header,
    refcount table, refcount block and L1 table, one cluster each; no backing or data file."""
    entries_per_l2 = CLUSTER // 8
    l1_size = -(-virtual_size // (entries_per_l2 * CLUSTER))
    refcount_table, refcount_block, l1_table = CLUSTER, 2 * CLUSTER, 3 * CLUSTER
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,  # version
        0,  # backing file offset: none
        0,  # backing file name size
        CLUSTER_BITS,
        virtual_size,
        0,  # no encryption
        l1_size,
        l1_table,
        refcount_table,
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
        0,  # incompatible features: none (no external data file, no extended L2)
        0,  # compatible features
        0,  # autoclear features
        4,  # refcount order: 16-bit refcounts
        104,  # header length
    )
    header += struct.pack(">II", 0, 0)  # end of header extensions
    image = bytearray(4 * CLUSTER)
    image[: len(header)] = header
    struct.pack_into(">Q", image, refcount_table, refcount_block)
    for cluster in range(4):  # each of the four clusters is used once
        struct.pack_into(">H", image, refcount_block + 2 * cluster, 1)
    return bytes(image)


def self_signed(host_name: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): a P-256 key and a SHA-256 certificate for `host_name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=CERT_DAYS))
        # It is its own trust anchor: uploaded to the hosts, it is the CA that signed itself.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, so nginx never serves half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.chmod(mode)
    os.replace(partial, path)
    print(f"wrote {path} ({len(data)} bytes)")


def main(root: Path) -> None:
    www, tls = root / "www", root / "tls"
    www.mkdir(mode=0o755, parents=True, exist_ok=True)
    tls.mkdir(mode=0o755, exist_ok=True)
    sample = www / "sample.qcow2"
    if not sample.exists():
        write(sample, qcow2_image(), 0o644)
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    write(www / "SHA256SUMS", f"{digest}  {sample.name}\n".encode(), 0o644)
    if not (tls / "templates.crt").exists() or not (tls / "templates.key").exists():
        cert_pem, key_pem = self_signed(HOST_NAME)
        # The key is for nginx's master process (root) only; it never lands under www/.
        write(tls / "templates.key", key_pem, 0o600)
        write(tls / "templates.crt", cert_pem, 0o644)
    write(www / "templates.pem", (tls / "templates.crt").read_bytes(), 0o644)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/srv/templates"))

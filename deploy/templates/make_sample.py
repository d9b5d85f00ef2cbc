"""Write the sample template and the TLS certificate that the compose `templates` server uses.

Run once by compose's `template-init` service with the project image's Python:
`python make_sample.py /srv/templates`, and by `make run` (libs/directdl/launcher.py) into its
data directory with the names the local server answers to:
`python make_sample.py var/templates templates localhost 127.0.0.1`. It writes

    www/sample.qcow2   an empty QCOW2 v3 image (64 MiB virtual, 256 KiB on disk)
    www/SHA256SUMS     its digest, for `directdl template register --checksum {SHA-256}...`
    www/templates.pem  the server's self-signed certificate, for `directdl cert upload`
    tls/templates.crt  the same certificate, and tls/templates.key, for nginx only

Files that exist are kept, so the certificate operators uploaded stays the one served; the
certificate is made anew only when it does not name every host name or address asked for.
"""

from __future__ import annotations

import hashlib
import ipaddress
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


def subject_names(names: list[str]) -> list[x509.GeneralName]:
    """Each name as the SAN entry a client checks it against: an address or a DNS name."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def names_all(cert_pem: bytes, names: list[str]) -> bool:
    """Whether the certificate's SAN has every one of `names`."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(entry in san for entry in subject_names(names))


def self_signed(names: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): a P-256 key and a SHA-256 certificate for `names`, the
    first of which is its common name."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
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
        .add_extension(x509.SubjectAlternativeName(subject_names(names)), critical=False)
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


def main(root: Path, names: list[str]) -> None:
    www, tls = root / "www", root / "tls"
    www.mkdir(mode=0o755, parents=True, exist_ok=True)
    tls.mkdir(mode=0o755, exist_ok=True)
    sample = www / "sample.qcow2"
    if not sample.exists():
        write(sample, qcow2_image(), 0o644)
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    write(www / "SHA256SUMS", f"{digest}  {sample.name}\n".encode(), 0o644)
    crt, key = tls / "templates.crt", tls / "templates.key"
    if not crt.exists() or not key.exists() or not names_all(crt.read_bytes(), names):
        cert_pem, key_pem = self_signed(names)
        # The key is for nginx's master process (root) only; it never lands under www/.
        write(key, key_pem, 0o600)
        write(crt, cert_pem, 0o644)
    write(www / "templates.pem", crt.read_bytes(), 0o644)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/srv/templates"), sys.argv[2:] or [HOST_NAME])

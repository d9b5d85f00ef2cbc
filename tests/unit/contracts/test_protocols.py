"""The protocol and compression tables of the template contract, and what they derive."""

from __future__ import annotations

import pytest

from directdl.contracts.template import (
    DEFAULT_PORTS,
    PROTOCOLS,
    Compression,
    SourceProtocol,
    file_name,
    protocol_of,
)

pytestmark = pytest.mark.unit


def test_every_protocol_has_its_row() -> None:
    assert set(PROTOCOLS) == set(SourceProtocol)


def test_default_ports_come_from_the_rows() -> None:
    assert DEFAULT_PORTS == {"http": 80, "https": 443, "nfs": 2049}


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("http://h/a.qcow2", SourceProtocol.HTTP),
        ("HTTPS://h/a.qcow2", SourceProtocol.HTTPS),
        ("nfs://h/export/a.qcow2", SourceProtocol.NFS),
        ("https://h/a.meta4?sig=1", SourceProtocol.METALINK),
        ("http://h/a.METALINK", SourceProtocol.METALINK),
        ("nfs://h/export/a.meta4", SourceProtocol.NFS),  # no metalink over NFS: a plain file
        ("https://h/a.meta4.gz", SourceProtocol.HTTPS),
        ("https://h/a.qcow2?x=.meta4", SourceProtocol.HTTPS),  # the path decides, not the query
        ("ftp://h/a.qcow2", None),
        ("metalink://h/a.meta4", None),
        ("h/a.qcow2", None),
    ],
)
def test_protocol_of(url: str, protocol: SourceProtocol | None) -> None:
    assert protocol_of(url) is protocol


@pytest.mark.parametrize(
    ("name", "compression"),
    [
        ("a.qcow2.gz", Compression.GZ),
        ("A.RAW.BZ2", Compression.BZ2),
        ("a.iso.xz", Compression.XZ),
        ("a.qcow2", None),
        ("gz", None),
        ("a.qcow2.zst", None),
        ("a.qcow2.", None),
        ("", None),
    ],
)
def test_compression_of_a_file_name(name: str, compression: Compression | None) -> None:
    assert Compression.of(name) is compression


def test_file_name_is_the_decoded_last_path_segment() -> None:
    assert file_name("https://h/dir.raw/disk%2Eraw%2Egz?x=a.iso#f") == "disk.raw.gz"
    assert Compression.of(file_name("nfs://h/export/d.qcow2.xz")) is Compression.XZ

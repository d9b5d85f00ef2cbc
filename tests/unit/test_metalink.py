"""Parsing metalink v4 and v3: mirror order, the strongest whole-file hash, and refusals."""

from __future__ import annotations

import pytest

from directdl.metalink import MAX_BYTES, Metalink, MetalinkError, parse_metalink
from directdl_testing.metalinks import write_meta4, write_metalink_v3

pytestmark = pytest.mark.unit

SOURCE = "https://images.example.org/t/centos.meta4"
SHA256 = "5a" * 32
SHA512 = "0b" * 64
SHA1 = "c3" * 20
MD5 = "d4" * 16

V4 = f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <generator>MirrorBrain/2.19.0</generator>
  <published>2024-03-01T10:00:00Z</published>
  <file name="centos-9.qcow2">
    <size>1073741824</size>
    <hash type="md5">{MD5}</hash>
    <hash type="sha-256">{SHA256.upper()}</hash>
    <pieces type="sha-512" length="262144">
      <hash>{SHA512}</hash>
      <hash>{"1f" * 64}</hash>
    </pieces>
    <metaurl mediatype="torrent" priority="1">https://t.example.org/centos.torrent</metaurl>
    <url location="de" priority="20">https://b.example.org/centos-9.qcow2</url>
    <url location="us" priority="10">https://a.example.org/centos-9.qcow2</url>
    <url priority="20">http://c.example.org/centos-9.qcow2</url>
    <url>https://last.example.org/centos-9.qcow2</url>
    <url priority="5">ftp://ftp.example.org/centos-9.qcow2</url>
    <url priority="1">rsync://rsync.example.org/centos-9.qcow2</url>
  </file>
</metalink>
""".encode()

V3 = f"""<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" generator="Metalink Editor">
  <files>
    <file name="debian-12.raw">
      <size>2147483648</size>
      <verification>
        <hash type="md5">{MD5}</hash>
        <hash type="sha1">{SHA1}</hash>
        <hash type="sha256">{SHA256}</hash>
        <pieces length="262144" type="sha512">
          <hash piece="0">{SHA512}</hash>
        </pieces>
      </verification>
      <resources>
        <url type="http" preference="50">http://low.example.org/debian-12.raw</url>
        <url type="https" preference="100">https://top.example.org/debian-12.raw</url>
        <url type="ftp" preference="100">ftp://ftp.example.org/debian-12.raw</url>
        <url type="bittorrent" preference="100">http://t.example.org/debian-12.torrent</url>
        <url type="http" preference="50">http://low2.example.org/debian-12.raw</url>
        <url type="http">http://none.example.org/debian-12.raw</url>
      </resources>
    </file>
  </files>
</metalink>
""".encode()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="&lol9;"><url>http://a.example.org/x</url></file>
</metalink>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE metalink [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="x"><size>1</size><url>http://a.example.org/&secret;</url></file>
</metalink>
"""


def refused(data: bytes, source: str | None = SOURCE) -> str:
    with pytest.raises(MetalinkError) as caught:
        parse_metalink(data, source)
    return str(caught.value)


def test_v4_document() -> None:
    metalink = parse_metalink(V4, SOURCE)

    assert metalink.name == "centos-9.qcow2"
    assert metalink.size == 1073741824
    assert metalink.hashes == {"MD5": MD5, "SHA-256": SHA256}  # hex lowered, pieces left out
    # Lower priority first; the two 20s keep document order; no priority comes last;
    # ftp and rsync are dropped whatever their priority, and the metaurl is not a mirror.
    assert metalink.mirrors == [
        "https://a.example.org/centos-9.qcow2",
        "https://b.example.org/centos-9.qcow2",
        "http://c.example.org/centos-9.qcow2",
        "https://last.example.org/centos-9.qcow2",
    ]


def test_v3_document() -> None:
    metalink = parse_metalink(V3, SOURCE)

    assert metalink.name == "debian-12.raw"
    assert metalink.size == 2147483648
    assert metalink.hashes == {"MD5": MD5, "SHA-1": SHA1, "SHA-256": SHA256}
    # Higher preference first; equal ones keep document order; no preference comes last.
    # An ftp url and a bittorrent one (an http URL to a .torrent) are dropped.
    assert metalink.mirrors == [
        "https://top.example.org/debian-12.raw",
        "http://low.example.org/debian-12.raw",
        "http://low2.example.org/debian-12.raw",
        "http://none.example.org/debian-12.raw",
    ]


@pytest.mark.parametrize("document", [V4, V3], ids=["v4", "v3"])
def test_a_stronger_piece_hash_does_not_count(document: bytes) -> None:
    # Both documents carry SHA-512 piece hashes; only whole-file hashes are candidates.
    assert parse_metalink(document).strongest_hash() == ("SHA-256", SHA256)


@pytest.mark.parametrize(
    ("hashes", "strongest"),
    [
        ({"MD5": MD5, "SHA-1": SHA1, "SHA-512": SHA512, "SHA-256": SHA256}, "SHA-512"),
        ({"SHA-224": "e5" * 28, "SHA-384": "f6" * 48, "SHA-256": SHA256}, "SHA-384"),
        ({"SHA-224": "e5" * 28, "SHA-1": SHA1}, "SHA-224"),
        ({"MD5": MD5, "SHA-1": SHA1}, "SHA-1"),
        ({"MD5": MD5}, "MD5"),
    ],
)
def test_strongest_hash_order(hashes: dict[str, str], strongest: str) -> None:
    for write in (write_meta4, write_metalink_v3):
        document = write("t.qcow2", 10, hashes, [("http://a.example.org/t.qcow2", None)])
        assert parse_metalink(document).strongest_hash() == (strongest, hashes[strongest])


def test_no_hash_and_no_size() -> None:
    metalink = parse_metalink(write_meta4("t.raw", None, {}, [("https://a.example.org/t", 1)]))
    assert metalink == Metalink("t.raw", None, {}, ["https://a.example.org/t"])
    assert metalink.strongest_hash() is None


def test_unknown_hash_types_are_skipped() -> None:
    document = V4.replace(b'type="md5"', b'type="sha3-256"')
    assert parse_metalink(document).hashes == {"SHA-256": SHA256}


def test_helper_documents_round_trip() -> None:
    urls = [("http://x.example.org/a", 2), ("http://y.example.org/a", 1)]
    pieces = ("SHA-512", 1024, [SHA512])
    v4 = parse_metalink(write_meta4("a", 5, {"SHA-256": SHA256}, urls, pieces=pieces))
    v3 = parse_metalink(write_metalink_v3("a", 5, {"SHA-256": SHA256}, urls, pieces=pieces))
    assert v4.mirrors == ["http://y.example.org/a", "http://x.example.org/a"]
    assert v3.mirrors == ["http://x.example.org/a", "http://y.example.org/a"]
    assert v4.hashes == v3.hashes == {"SHA-256": SHA256}


def test_no_file() -> None:
    document = b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><generator/></metalink>'
    assert (
        refused(document)
        == f"0 <file> elements where exactly one is supported, in metalink {SOURCE}"
    )


def test_two_files() -> None:
    file = b'<file name="a"><url>http://a.example.org/a</url></file>'
    document = b'<metalink xmlns="urn:ietf:params:xml:ns:metalink">' + file * 2 + b"</metalink>"
    assert "2 <file> elements" in refused(document)
    v3 = V3.replace(b"<files>", b'<files><file name="other"></file>')
    assert "2 <file> elements" in refused(v3)


def test_no_http_mirror() -> None:
    document = write_meta4(
        "t", 1, {}, [("ftp://f.example.org/t", 1), ("rsync://r.example.org/t", 2)]
    )
    assert refused(document) == f"no http or https mirror for t, in metalink {SOURCE}"
    assert "no http or https mirror" in refused(write_metalink_v3("t", 1, {}, []))


def test_malformed_xml() -> None:
    assert "not well-formed XML" in refused(V4[:-40])
    assert "not well-formed XML" in refused(b"")
    assert "not well-formed XML" in refused(b"<metalink>&undefined;</metalink>")


def test_billion_laughs() -> None:
    assert refused(BILLION_LAUGHS) == (
        f"DOCTYPE and ENTITY declarations are not allowed, in metalink {SOURCE}"
    )


def test_entity_declarations_are_refused_in_any_encoding() -> None:
    assert "DOCTYPE" in refused(EXTERNAL_ENTITY)
    # A scan of the raw bytes for "<!DOCTYPE" would miss this one.
    utf16 = BILLION_LAUGHS.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-16")
    assert "DOCTYPE" in refused(utf16)


def test_size_cap() -> None:
    padding = b"<!--" + b"x" * MAX_BYTES + b"-->"
    assert "larger than" in refused(V4.replace(b"<generator>", padding + b"<generator>"))


def test_not_a_metalink() -> None:
    assert "neither metalink v4 nor v3" in refused(b"<html><body/></html>")
    # The right local names in no namespace are still not a metalink.
    assert "neither metalink v4 nor v3" in refused(b'<metalink><file name="a"/></metalink>')


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (b"<size>1073741824</size>", b"<size>1 GiB</size>", "size '1 GiB' is not a number"),
        (b"<size>1073741824</size>", b"<size>-1</size>", "size '-1' is not a number"),
        (SHA256.upper().encode(), b"zz" * 32, "SHA-256 hash 'zzzz"),
        (SHA256.upper().encode(), b"5a" * 31, "is not 64 hex digits"),
        (b'priority="10"', b'priority="0"', "url priority '0' is not a number from 1"),
        (b'priority="10"', b'priority="high"', "url priority 'high'"),
        (b'name="centos-9.qcow2"', b'name=""', "<file> has no name"),
        (b'name="centos-9.qcow2"', b'name="../../etc/cron.d/x"', "climbs out with '..'"),
    ],
)
def test_bad_values(old: bytes, new: bytes, why: str) -> None:
    assert old in V4
    assert why in refused(V4.replace(old, new))


def test_conflicting_hashes() -> None:
    document = V3.replace(
        b"</verification>", f'<hash type="sha-256">{"9" * 64}</hash></verification>'.encode()
    )
    assert "two different SHA-256 hashes" in refused(document)


def test_unnamed_source() -> None:
    assert refused(b"<x/>", None).endswith(", in metalink (unnamed)")

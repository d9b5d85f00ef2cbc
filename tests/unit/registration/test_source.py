"""Checking template URLs: protocol, host, NFS shape, extension per format, and the hypervisor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directdl.contracts.errors import InvalidMessage, MessageError, Unsupported
from directdl.contracts.template import SourceProtocol, TemplateFormat
from registration.domain import source as source_module
from registration.domain.source import Source, check_hypervisor, parse_source

pytestmark = pytest.mark.unit

QCOW2, RAW, ISO = TemplateFormat.QCOW2, TemplateFormat.RAW, TemplateFormat.ISO
EXTENSIONS = {QCOW2: ["qcow2"], RAW: ["raw", "img"], ISO: ["iso"]}
COMPRESSIONS: list[str | None] = [None, "gz", "bz2", "xz"]
BASES = {
    SourceProtocol.HTTP: "http://images.example.org/templates/",
    SourceProtocol.HTTPS: "https://images.example.org:8443/a/b/",
    SourceProtocol.NFS: "nfs://10.0.0.5/export/templates/",
}


def name_for(ext: str, compression: str | None, upper: bool = False) -> str:
    name = f"debian-12.{ext}" + (f".{compression}" if compression else "")
    return name.upper() if upper else name


def rejected(
    error: type[MessageError], call: Callable[[], object], value: str, field: str = "url"
) -> MessageError:
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error
    assert repr(value) in caught.value.message
    assert caught.value.details["field"] == field
    assert caught.value.details["value"] == value
    return caught.value


@pytest.mark.parametrize("protocol", list(BASES))
@pytest.mark.parametrize(
    ("fmt", "ext"), [(fmt, ext) for fmt, exts in EXTENSIONS.items() for ext in exts]
)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("upper", [False, True])
def test_every_protocol_format_extension_and_compression(
    protocol: SourceProtocol, fmt: TemplateFormat, ext: str, compression: str | None, upper: bool
) -> None:
    url = BASES[protocol] + name_for(ext, compression, upper)
    assert parse_source(url, fmt) == Source(url, protocol, compression)


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("HTTP://h.example/a.qcow2", SourceProtocol.HTTP),
        ("Https://h.example/a.qcow2", SourceProtocol.HTTPS),
        ("NFS://h.example/export/a.qcow2", SourceProtocol.NFS),
        ("https://user:pw@h.example/a.qcow2", SourceProtocol.HTTPS),
        ("http://[fd00::1]:8080/a.qcow2", SourceProtocol.HTTP),
        ("nfs://[fd00::1]/export/a.qcow2", SourceProtocol.NFS),
    ],
)
def test_scheme_is_case_insensitive_and_hosts_vary(url: str, protocol: SourceProtocol) -> None:
    assert parse_source(url, QCOW2).protocol is protocol


@pytest.mark.parametrize(
    "url",
    [
        "https://h.example/a.qcow2?token=abc.raw",
        "https://h.example/a.qcow2#part.iso",
        "https://h.example/a.qcow2?x=1&y=.gz#frag",
        "https://h.example/dir.raw/a.qcow2",
        "https://h.example/a%2Eqcow2",
    ],
)
def test_extension_ignores_query_fragment_and_directories(url: str) -> None:
    assert parse_source(url, QCOW2) == Source(url, SourceProtocol.HTTPS, None)


def test_compression_comes_from_the_path_not_the_query() -> None:
    url = "https://h.example/a.iso.xz?sig=1.gz"
    assert parse_source(url, ISO).compression == "xz"


@pytest.mark.parametrize("scheme", ["http", "https", "HTTPS"])
@pytest.mark.parametrize("suffix", [".metalink", ".meta4", ".METALINK", ".Meta4"])
@pytest.mark.parametrize("query", ["", "?mirror=eu", "?a=1&b=x.qcow2", "#frag"])
@pytest.mark.parametrize("fmt", list(TemplateFormat))
def test_metalink_skips_the_extension_check(
    scheme: str, suffix: str, query: str, fmt: TemplateFormat
) -> None:
    url = f"{scheme}://mirrors.example/debian-12{suffix}{query}"
    assert parse_source(url, fmt) == Source(url, SourceProtocol.METALINK, None)


@pytest.mark.parametrize(
    "url", ["https://h.example/a.meta4.gz", "https://h.example/meta4", "https://h.example/a.meta"]
)
def test_near_metalinks_are_plain_files(url: str) -> None:
    rejected(InvalidMessage, lambda: parse_source(url, QCOW2), url)


def test_metalink_over_nfs_is_a_plain_file() -> None:
    url = "nfs://h.example/export/a.meta4"
    rejected(InvalidMessage, lambda: parse_source(url, QCOW2), url)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("ftp://h.example/a.qcow2", "ftp"),
        ("FTP://h.example/a.qcow2", "ftp"),
        ("file:///var/lib/a.qcow2", "file"),
        ("s3://bucket/a.qcow2", "s3"),
        ("sftp://h.example/a.qcow2", "sftp"),
        ("smb://h.example/share/a.qcow2", "smb"),
        ("metalink://h.example/a.meta4", "metalink"),
    ],
)
def test_other_schemes_are_unsupported(url: str, scheme: str) -> None:
    error = rejected(Unsupported, lambda: parse_source(url, QCOW2), url)
    assert f"scheme {scheme!r}" in error.message
    for protocol in ("http", "https", "nfs", "metalink"):
        assert protocol in error.message


@pytest.mark.parametrize(
    "url", ["h.example/a.qcow2", "/var/lib/a.qcow2", "a.qcow2", "//h.example/a.qcow2", ""]
)
def test_no_scheme_is_unsupported(url: str) -> None:
    error = rejected(Unsupported, lambda: parse_source(url, QCOW2), url)
    assert "has no scheme" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "http:///a.qcow2",
        "https://:443/a.qcow2",
        "https://user@/a.qcow2",
        "nfs:///export/a.qcow2",
        "http:a.qcow2",
    ],
)
def test_missing_host_is_invalid(url: str) -> None:
    shown = url.replace("user@", "***@")  # user-info is never shown, even with no host
    error = rejected(InvalidMessage, lambda: parse_source(url, QCOW2), shown)
    assert "has no host" in error.message


@pytest.mark.parametrize(
    "url", ["https://h.example:http/a.qcow2", "http://h.example:99999/a.qcow2"]
)
def test_bad_port_is_invalid(url: str) -> None:
    error = rejected(InvalidMessage, lambda: parse_source(url, QCOW2), url)
    assert "invalid port" in error.message


def test_unparseable_url_is_invalid() -> None:
    url = "http://[fd00::1/a.qcow2"
    error = rejected(InvalidMessage, lambda: parse_source(url, QCOW2), "***")
    assert "cannot be parsed" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "nfs://h.example",
        "nfs://h.example/",
        "nfs://h.example/a.qcow2",
        "nfs://h.example//a.qcow2",
        "nfs://h.example/export/",
        "nfs://h.example/export/templates/",
    ],
)
def test_nfs_needs_an_export_and_a_file(url: str) -> None:
    error = rejected(InvalidMessage, lambda: parse_source(url, QCOW2), url)
    assert "nfs://server/export/path/file" in error.message


WRONG = ["qcow2", "raw", "img", "iso", "vhd", "vmdk", "ova", "tar.gz", "zip", "qcow2.zip"]


@pytest.mark.parametrize("protocol", list(BASES))
@pytest.mark.parametrize(
    ("fmt", "ext"),
    [(fmt, ext) for fmt in TemplateFormat for ext in WRONG if ext not in EXTENSIONS[fmt]],
)
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_wrong_extension_names_url_format_and_expected(
    protocol: SourceProtocol, fmt: TemplateFormat, ext: str, compression: str | None
) -> None:
    url = BASES[protocol] + name_for(ext, compression)
    error = rejected(InvalidMessage, lambda: parse_source(url, fmt), url)
    assert f"format {fmt.value}" in error.message
    for expected in EXTENSIONS[fmt]:
        assert f".{expected}" in error.message
    assert "optionally followed by .gz, .bz2 or .xz" in error.message
    assert error.details["format"] == fmt.value


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.qcow2.gz.gz", QCOW2),
        ("a.qcow2.xz.bz2", QCOW2),
        ("a.gz.qcow2.gz", ISO),
        ("a.gz", QCOW2),
        ("a.xz", RAW),
        ("qcow2", QCOW2),
        ("a.qcow2.tgz", QCOW2),
        ("a.qcow2.zst", QCOW2),
        ("a.qcow2.", QCOW2),
        ("a.rawimg", RAW),
        ("", RAW),
    ],
)
def test_only_one_known_compression_suffix(name: str, fmt: TemplateFormat) -> None:
    url = f"https://h.example/dir/{name}"
    rejected(InvalidMessage, lambda: parse_source(url, fmt), url)


def test_message_example_from_the_brief() -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_source("https://h/a.raw", QCOW2)
    assert caught.value.message == (
        "URL 'https://h/a.raw' does not end in an extension for format QCOW2: "
        "expected .qcow2, optionally followed by .gz, .bz2 or .xz"
    )


def test_raw_lists_both_extensions() -> None:
    with pytest.raises(InvalidMessage, match=r"expected \.raw or \.img, optionally"):
        parse_source("https://h/a.qcow2", RAW)


def test_format_without_extensions_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_module, "EXTENSIONS", {QCOW2: (".qcow2",)})
    rejected(Unsupported, lambda: parse_source("https://h/a.iso", ISO), "ISO", field="format")


@pytest.mark.parametrize("hypervisor", ["KVM", "kvm", "Kvm", "kVm", "kvM", " kvm "])
def test_kvm_in_any_casing(hypervisor: str) -> None:
    assert check_hypervisor(hypervisor) == "KVM"


@pytest.mark.parametrize(
    "hypervisor", ["VMware", "XenServer", "Hyperv", "LXC", "Simulator", "", "kvm2", "k v m"]
)
def test_other_hypervisors_are_unsupported(hypervisor: str) -> None:
    error = rejected(
        Unsupported, lambda: check_hypervisor(hypervisor), hypervisor, field="hypervisor"
    )
    assert error.message == (
        f"direct download is only supported for the KVM hypervisor, not {hypervisor!r}"
    )

"""Where a template is downloaded from: its protocol, and the compression its file name shows."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from directdl.contracts.bounds import URL_MAX
from directdl.contracts.errors import InvalidMessage, Unsupported
from directdl.contracts.template import (
    PROTOCOLS,
    Compression,
    SourceProtocol,
    TemplateFormat,
    file_name,
    protocol_of,
)
from directdl.redaction import redact_url

EXTENSIONS: dict[TemplateFormat, tuple[str, ...]] = {
    TemplateFormat.QCOW2: (".qcow2",),
    TemplateFormat.RAW: (".raw", ".img"),
    TemplateFormat.ISO: (".iso",),
}


def _supported() -> str:
    """The protocols in words, as in: http, https, nfs, and metalink (an http ... URL ending in
    .metalink or .meta4)."""
    plain = [
        scheme for spec in PROTOCOLS.values() if spec.names_the_file for scheme in spec.schemes
    ]
    documents = [
        f"{protocol.value} (an {' or '.join(spec.schemes)} URL ending in "
        f"{' or '.join(spec.suffixes)})"
        for protocol, spec in PROTOCOLS.items()
        if not spec.names_the_file
    ]
    return ", ".join(plain) + ", and " + ", ".join(documents)


_SUPPORTED = _supported()


@dataclass(frozen=True)
class Source:
    """A template's URL, how to fetch it, and how it is compressed (None when it is not)."""

    url: str
    protocol: SourceProtocol
    compression: Compression | None


def parse_source(url: str, fmt: TemplateFormat) -> Source:
    """Check that a URL can be downloaded directly as fmt, or raise saying why not.
    Errors show the URL redacted: they reach logs and operators, never only its owner."""
    details = _url_details(url)
    shown = shown_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as err:  # an unbalanced "[" in the host, for one
        raise InvalidMessage(f"URL {shown!r} cannot be parsed: {err}", details=details) from err
    protocol = protocol_of(url)
    if protocol is None:
        scheme = parts.scheme.lower()
        used = f"uses scheme {scheme!r}" if scheme else "has no scheme"
        raise Unsupported(
            f"URL {shown!r} {used}, which direct download does not support; "
            f"supported protocols: {_SUPPORTED}",
            details=details,
        )
    try:
        parts.port  # noqa: B018 - urllib only validates the port when it is read
    except ValueError as err:
        raise InvalidMessage(f"URL {shown!r} has an invalid port", details=details) from err
    if not parts.hostname:
        raise InvalidMessage(f"URL {shown!r} has no host", details=details)

    spec = PROTOCOLS[protocol]
    if spec.export:
        # The host agent reads the file inside server:/export; it needs both parts.
        export, _, name = parts.path.rpartition("/")
        if not export.strip("/") or not name:
            scheme = parts.scheme.lower()
            raise InvalidMessage(
                f"{scheme.upper()} URL {shown!r} must look like {scheme}://server/export/path/file",
                details=details,
            )
    if not spec.names_the_file:
        # The file name, and so the extension, lives inside the document.
        return Source(url, protocol, None)
    return Source(url, protocol, _compression(url, file_name(url), fmt))


def _compression(url: str, name: str, fmt: TemplateFormat) -> Compression | None:
    extensions = EXTENSIONS.get(fmt)
    if extensions is None:
        raise Unsupported(
            f"format {str(fmt)!r} has no known file extensions",
            details={"field": "format", "value": str(fmt)},
        )
    compression = Compression.of(name)
    stem = name.lower().removesuffix(f".{compression}" if compression else "")
    if stem.endswith(extensions):
        return compression
    expected = " or ".join(extensions)
    suffixes = [f".{kind}" for kind in Compression]
    compressions = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}"
    raise InvalidMessage(
        f"URL {shown_url(url)!r} does not end in an extension for format {fmt.value}: "
        f"expected {expected}, optionally followed by {compressions}",
        details={**_url_details(url), "format": fmt.value},
    )


def _url_details(url: str) -> dict[str, str]:
    return {"field": "url", "value": shown_url(url)}


def shown_url(url: str) -> str:
    """A URL as replies, events, logs and errors show it: its user-info and query hidden. One
    with nothing to hide is shown as given, since redacting also normalises it. "***" may be
    longer than what it hides, so the result is cut to the longest URL a view may carry."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_url(url)
    return redact_url(url)[:URL_MAX] if "@" in parts.netloc or parts.query else url


def check_hypervisor(hypervisor: str) -> str:
    """Direct download is a KVM feature; return the canonical name or raise Unsupported."""
    if hypervisor.strip().lower() == "kvm":
        return "KVM"
    raise Unsupported(
        f"direct download is only supported for the KVM hypervisor, not {hypervisor!r}",
        details={"field": "hypervisor", "value": hypervisor},
    )

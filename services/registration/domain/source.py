"""Where a template is downloaded from: its protocol, and the compression its file name shows."""

from __future__ import annotations

from dataclasses import dataclass
from posixpath import basename
from urllib.parse import unquote, urlsplit

from directdl.contracts.bounds import URL_MAX
from directdl.contracts.errors import InvalidMessage, Unsupported
from directdl.contracts.template import Protocol, TemplateFormat
from directdl.redaction import redact_url

_SCHEMES = {"http": Protocol.HTTP, "https": Protocol.HTTPS, "nfs": Protocol.NFS}
_METALINK_SUFFIXES = (".metalink", ".meta4")
_SUPPORTED = "http, https, nfs, and metalink (an http or https URL ending in .metalink or .meta4)"

EXTENSIONS: dict[TemplateFormat, tuple[str, ...]] = {
    TemplateFormat.QCOW2: (".qcow2",),
    TemplateFormat.RAW: (".raw", ".img"),
    TemplateFormat.ISO: (".iso",),
}
COMPRESSIONS = ("gz", "bz2", "xz")


@dataclass(frozen=True)
class Source:
    """A template's URL, how to fetch it, and how it is compressed (None when it is not)."""

    url: str
    protocol: Protocol
    compression: str | None


def parse_source(url: str, fmt: TemplateFormat) -> Source:
    """Check that a URL can be downloaded directly as fmt, or raise saying why not.
    Errors show the URL redacted: they reach logs and operators, never only its owner."""
    details = _url_details(url)
    shown = shown_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as err:  # an unbalanced "[" in the host, for one
        raise InvalidMessage(f"URL {shown!r} cannot be parsed: {err}", details=details) from err
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
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

    path = parts.path.lower()
    if scheme == "nfs":
        # The host agent mounts server:/export and reads the file inside; it needs both parts.
        export, _, name = parts.path.rpartition("/")
        if not export.strip("/") or not name:
            raise InvalidMessage(
                f"NFS URL {shown!r} must look like nfs://server/export/path/file",
                details=details,
            )
    elif path.endswith(_METALINK_SUFFIXES):
        # The file name, and so the extension, lives inside the metalink document.
        return Source(url, Protocol.METALINK, None)

    return Source(url, _SCHEMES[scheme], _compression(url, unquote(basename(parts.path)), fmt))


def _compression(url: str, name: str, fmt: TemplateFormat) -> str | None:
    extensions = EXTENSIONS.get(fmt)
    if extensions is None:
        raise Unsupported(
            f"format {str(fmt)!r} has no known file extensions",
            details={"field": "format", "value": str(fmt)},
        )
    stem, dot, suffix = name.lower().rpartition(".")
    compression = suffix if dot and suffix in COMPRESSIONS else None
    if compression is None:
        stem = name.lower()
    if stem.endswith(extensions):
        return compression
    expected = " or ".join(extensions)
    compressions = ", ".join(f".{c}" for c in COMPRESSIONS[:-1]) + f" or .{COMPRESSIONS[-1]}"
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

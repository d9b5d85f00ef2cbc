"""Template messages: register, list, get, update and delete templates for direct download."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import (
    MANY,
    ZONES_MAX,
    Bytes,
    Count,
    Details,
    Digest,
    Id,
    Name,
    Page,
    Short,
    Token,
    Url,
)

REGISTRATION = "registration"

ZoneId = Id
Zones = Annotated[list[ZoneId], Field(min_length=1, max_length=ZONES_MAX)]


class TemplateFormat(StrEnum):
    QCOW2 = "QCOW2"
    RAW = "RAW"
    ISO = "ISO"


class TemplateType(StrEnum):
    USER = "USER"
    ROUTING = "ROUTING"
    SYSTEM = "SYSTEM"


class SourceProtocol(StrEnum):
    """How the hosts fetch a template's URL; metalink is an http(s) URL ending in .meta4 or
    .metalink, a document naming the file and its mirrors."""

    HTTP = "http"
    HTTPS = "https"
    NFS = "nfs"
    METALINK = "metalink"


@dataclass(frozen=True)
class ProtocolSpec:
    """Which URLs select a protocol, and the shape their path must have."""

    # URL scheme -> the server's port when the URL names none.
    schemes: Mapping[str, int]
    # When set, only a path ending so selects it: the URL is a document that names the file
    # (and so its compression) inside, and every other path is the scheme's plain protocol.
    suffixes: tuple[str, ...] = ()
    # The path is /export/.../file: the server's export, then the file inside it.
    export: bool = False

    @property
    def names_the_file(self) -> bool:
        """Whether the URL's own last segment is the template's file name."""
        return not self.suffixes


# The one table of protocols. A new one needs a row here and a fetcher in the host agent's
# table (host_agent.download.protocols); registration learns all it checks from this row.
PROTOCOLS: Mapping[SourceProtocol, ProtocolSpec] = {
    SourceProtocol.HTTP: ProtocolSpec({"http": 80}),
    SourceProtocol.HTTPS: ProtocolSpec({"https": 443}),
    SourceProtocol.NFS: ProtocolSpec({"nfs": 2049}, export=True),
    SourceProtocol.METALINK: ProtocolSpec(
        {"http": 80, "https": 443}, suffixes=(".metalink", ".meta4")
    ),
}
DEFAULT_PORTS: Mapping[str, int] = {
    scheme: port for spec in PROTOCOLS.values() for scheme, port in spec.schemes.items()
}


def protocol_of(url: str) -> SourceProtocol | None:
    """The protocol a URL selects, None when none does; ValueError when it cannot be parsed."""
    parts = urlsplit(url)
    scheme, path = parts.scheme.lower(), parts.path.lower()
    candidates = [
        (protocol, spec) for protocol, spec in PROTOCOLS.items() if scheme in spec.schemes
    ]
    # Documents first: their suffix wins over the scheme's plain protocol.
    for protocol, spec in sorted(candidates, key=lambda candidate: candidate[1].names_the_file):
        if spec.names_the_file or path.endswith(spec.suffixes):
            return protocol
    return None


class Compression(StrEnum):
    """How a template file is compressed, named by its last suffix (disk.qcow2.xz). The host
    agent decompresses as it downloads and stores the image itself."""

    GZ = "gz"
    BZ2 = "bz2"
    XZ = "xz"

    @classmethod
    def of(cls, name: str) -> Compression | None:
        """What a file name's last suffix says; None when it names no compression."""
        _, dot, suffix = name.lower().rpartition(".")
        return next((kind for kind in cls if dot and kind.value == suffix), None)


def file_name(url: str) -> str:
    """A URL's last path segment, decoded: the name whose suffixes say format and compression."""
    return unquote(posixpath.basename(urlsplit(url).path))


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class TemplateView(BaseModel):
    """A template as the registration service describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: Name
    url: Url = Field(
        description="The source with its user-info and query shown as ***, as in "
        "https://***@host/t.qcow2?***: only the host sent to download it sees the full URL."
    )
    protocol: SourceProtocol
    zone_ids: Annotated[list[ZoneId], Field(max_length=ZONES_MAX)]
    hypervisor: Token
    format: TemplateFormat
    checksum: Digest | None = Field(
        None, description="Normalised as {ALGO}hex, for example {SHA-256}ab12..."
    )
    template_type: TemplateType
    direct_download: bool
    details: Details
    size: Bytes | None = Field(None, description="Bytes, as the source said at registration.")
    created_at: datetime
    updated_at: datetime


class TemplateResult(Result):
    template: TemplateView


class TemplatePage(Result):
    items: Annotated[list[TemplateView], Field(max_length=MANY)]
    total: Count
    page: Page
    page_size: Count


class RegisterTemplate(Command):
    """Register a template or ISO for direct download; nothing is copied now."""

    routing_key: ClassVar[str] = "template.register"
    result = TemplateResult

    name: Name
    url: Url
    zone_id: ZoneId | Zones
    hypervisor: Annotated[str, Field(min_length=1, max_length=32)]
    format: TemplateFormat
    checksum: Digest | None = None
    template_type: TemplateType = TemplateType.USER
    direct_download: bool = True
    details: Details = Field(
        default_factory=dict,
        description="HTTP_HEADER:<Name> entries become request headers at download time; "
        "they must be headers HTTP can carry (a token name, a latin-1 value without CR or LF).",
    )
    validate_url: bool = Field(
        True, description="Check now that the URL answers, and learn the template's size."
    )

    _upper_format = field_validator("format", "template_type", mode="before")(_upper)

    @property
    def zone_ids(self) -> list[str]:
        zones = [self.zone_id] if isinstance(self.zone_id, str) else self.zone_id
        return list(dict.fromkeys(zones))


class ListTemplates(Command):
    """List templates, filtered and paged."""

    routing_key: ClassVar[str] = "template.list"
    result = TemplatePage

    zone_id: ZoneId | None = None
    template_type: TemplateType | None = None
    name: Name | None = Field(None, description="Exact name.")
    keyword: Short | None = Field(None, description="Substring of the name.")
    id_prefix: Id | None = Field(
        None, description="Templates whose id starts so: a unique prefix names one, as in git."
    )
    page: Page = 1
    page_size: Annotated[int, Field(ge=1, le=500)] = 50

    _upper_type = field_validator("template_type", mode="before")(_upper)


class GetTemplate(Command):
    """Describe one template."""

    routing_key: ClassVar[str] = "template.get"
    result = TemplateResult

    id: Id


class UpdateTemplate(Command):
    """Rename a template or change its type (USER/ROUTING to SYSTEM included)."""

    routing_key: ClassVar[str] = "template.update"
    result = TemplateResult

    id: Id
    name: Name | None = None
    template_type: TemplateType | None = None

    _upper_type = field_validator("template_type", mode="before")(_upper)


class DeleteTemplate(Command):
    """Remove a template from the catalogue; on template.deleted, the hosts stop its downloads
    and remove their copies of it from their pools."""

    routing_key: ClassVar[str] = "template.delete"
    result = TemplateResult

    id: Id


class TemplateRegistered(Event):
    """A template was registered; nothing has been downloaded yet."""

    routing_key: ClassVar[str] = "template.registered"
    sent_by = senders.Services((senders.REGISTRATION,))

    template: TemplateView


class TemplateUpdated(Event):
    """A template was renamed or changed type; `changed` names the fields."""

    routing_key: ClassVar[str] = "template.updated"
    sent_by = senders.Services((senders.REGISTRATION,))

    template: TemplateView
    changed: Annotated[list[Short], Field(max_length=16)]


class TemplateDeleted(Event):
    """A template left the catalogue."""

    routing_key: ClassVar[str] = "template.deleted"
    sent_by = senders.Services((senders.REGISTRATION,))

    id: Id
    name: Name
    zone_ids: Annotated[list[ZoneId], Field(max_length=ZONES_MAX)]

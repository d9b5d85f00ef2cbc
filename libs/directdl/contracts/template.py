"""Template messages: register, list, get, update and delete templates for direct download."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

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


class Protocol(StrEnum):
    HTTP = "http"
    HTTPS = "https"
    NFS = "nfs"
    METALINK = "metalink"


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
    protocol: Protocol
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
    consumers = (REGISTRATION,)
    result = TemplateResult
    emits = ("template.registered",)

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
    consumers = (REGISTRATION,)
    result = TemplatePage

    zone_id: ZoneId | None = None
    template_type: TemplateType | None = None
    name: Name | None = Field(None, description="Exact name.")
    keyword: Short | None = Field(None, description="Substring of the name.")
    page: Page = 1
    page_size: Annotated[int, Field(ge=1, le=500)] = 50

    _upper_type = field_validator("template_type", mode="before")(_upper)


class GetTemplate(Command):
    """Describe one template."""

    routing_key: ClassVar[str] = "template.get"
    consumers = (REGISTRATION,)
    result = TemplateResult

    id: Id


class UpdateTemplate(Command):
    """Rename a template or change its type (USER/ROUTING to SYSTEM included)."""

    routing_key: ClassVar[str] = "template.update"
    consumers = (REGISTRATION,)
    result = TemplateResult
    emits = ("template.updated",)

    id: Id
    name: Name | None = None
    template_type: TemplateType | None = None

    _upper_type = field_validator("template_type", mode="before")(_upper)


class DeleteTemplate(Command):
    """Remove a template from the catalogue; its copies on primary storage are not touched."""

    routing_key: ClassVar[str] = "template.delete"
    consumers = (REGISTRATION,)
    result = TemplateResult
    emits = ("template.deleted",)

    id: Id


class TemplateRegistered(Event):
    """A template was registered; nothing has been downloaded yet."""

    routing_key: ClassVar[str] = "template.registered"
    sent_by = senders.Services((senders.REGISTRATION,))
    producers = (REGISTRATION,)

    template: TemplateView


class TemplateUpdated(Event):
    """A template was renamed or changed type; `changed` names the fields."""

    routing_key: ClassVar[str] = "template.updated"
    sent_by = senders.Services((senders.REGISTRATION,))
    producers = (REGISTRATION,)

    template: TemplateView
    changed: Annotated[list[Short], Field(max_length=16)]


class TemplateDeleted(Event):
    """A template left the catalogue."""

    routing_key: ClassVar[str] = "template.deleted"
    sent_by = senders.Services((senders.REGISTRATION,))
    producers = (REGISTRATION,)

    id: Id
    name: Name
    zone_ids: Annotated[list[ZoneId], Field(max_length=ZONES_MAX)]

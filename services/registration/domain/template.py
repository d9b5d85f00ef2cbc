"""The template aggregate and the rules that build and change one."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from directdl.contracts.bounds import (
    DETAILS_TOTAL_MAX,
    HEADER_PREFIX,
    HEADER_VALUE_MAX,
    HEADERS_MAX,
    ID_MAX,
    header_problem,
)
from directdl.contracts.checksum import parse_checksum
from directdl.contracts.errors import Unsupported
from directdl.contracts.template import (
    RegisterTemplate,
    SourceProtocol,
    TemplateFormat,
    TemplateType,
    TemplateView,
)
from directdl.redaction import HIDDEN, is_credential_header
from registration.domain.source import check_hypervisor, parse_source, shown_url

MIN_SECRET = 4


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    url: str
    protocol: SourceProtocol
    zone_ids: tuple[str, ...]
    hypervisor: str
    format: TemplateFormat
    checksum: str | None
    template_type: TemplateType
    details: dict[str, str] = field(default_factory=dict)
    direct_download: bool = True
    size: int | None = None
    # Without a checksum, the digest of the first copy a host verified: later copies must match.
    first_digest: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def view(self) -> TemplateView:
        """What replies and events show: the URL without its secrets."""
        return TemplateView(
            id=self.id,
            name=self.name,
            url=shown_url(self.url),
            protocol=self.protocol,
            zone_ids=list(self.zone_ids),
            hypervisor=self.hypervisor,
            format=self.format,
            checksum=self.checksum,
            template_type=self.template_type,
            direct_download=self.direct_download,
            details=shown_details(self.details),
            size=self.size,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def hide_secrets(self, text: str) -> str:
        """``text`` (a host's error message, say) with this template's URL redacted, and its
        password and query hidden wherever they appear on their own: a host may quote the URL
        in a form of its own, and what it says is passed on to operators."""
        shown = text.replace(self.url, shown_url(self.url))
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        for secret in (userinfo, parts.password, parts.query):
            # A short secret ("a", "1") would hide ordinary words; those are left as they are.
            if secret and len(secret) >= MIN_SECRET:
                shown = shown.replace(secret, HIDDEN)
        return shown


def new_template(cmd: RegisterTemplate) -> Template:
    """Validate a registration as CloudStack does, and stricter; raise on the first problem."""
    if not cmd.direct_download:
        raise Unsupported(
            "direct_download false is not supported: this system only registers templates "
            "that are downloaded straight to primary storage",
            details={"field": "direct_download", "value": False},
        )
    hypervisor = check_hypervisor(cmd.hypervisor)
    source = parse_source(cmd.url, cmd.format)
    checksum = str(parse_checksum(cmd.checksum)) if cmd.checksum else None
    return Template(
        id=str(uuid.uuid4()),
        name=cmd.name,
        url=source.url,
        protocol=source.protocol,
        zone_ids=tuple(sorted(cmd.zone_ids)),
        hypervisor=hypervisor,
        format=cmd.format,
        checksum=checksum,
        template_type=cmd.template_type,
        details=dict(cmd.details),
    )


def change_type(template: Template, new_type: TemplateType) -> Template:
    """USER and ROUTING may become SYSTEM (the seed document needs SQL for this); not back."""
    if template.template_type is TemplateType.SYSTEM and new_type is not TemplateType.SYSTEM:
        raise Unsupported(
            f"template {template.id} is SYSTEM and cannot become {new_type.value}",
            details={"field": "template_type", "value": new_type.value},
        )
    return replace(template, template_type=new_type, updated_at=datetime.now(UTC))


def shown_details(details: Mapping[str, str]) -> dict[str, str]:
    """Details as replies and events show them: a credential header's value is hidden, as
    the template's URL is; the download command alone carries it. Details stored before
    they had bounds are shown only as far as the bounds allow, so a view never fails."""
    shown: dict[str, str] = {}
    total = 0
    for key, stored in details.items():
        name = key.removeprefix(HEADER_PREFIX)
        secret = key.startswith(HEADER_PREFIX) and is_credential_header(name)
        value = HIDDEN if secret else stored
        size = len(key) + len(value)
        fits = len(key) <= ID_MAX and len(value) <= HEADER_VALUE_MAX
        if not fits or total + size > DETAILS_TOTAL_MAX or len(shown) == HEADERS_MAX:
            continue
        if key.startswith(HEADER_PREFIX) and header_problem(name, value):
            continue
        shown[key] = value
        total += size
    return shown


def request_headers(template: Template) -> dict[str, str]:
    """`HTTP_HEADER:<Name>` details, as CloudStack stores them, become request headers.
    The contract refuses headers HTTP cannot carry; one stored before it did is left out."""
    headers = {
        key.removeprefix(HEADER_PREFIX): value
        for key, value in template.details.items()
        if key.startswith(HEADER_PREFIX)
    }
    return {name: value for name, value in headers.items() if not header_problem(name, value)}


def rename(template: Template, name: str) -> Template:
    return replace(template, name=name, updated_at=datetime.now(UTC))

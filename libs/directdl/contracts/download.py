"""The host agent's download command and what it reports back."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import (
    Bytes,
    Digest,
    Headers,
    Id,
    Path,
    Rate,
    Seconds,
    Text,
    Token,
    Url,
)
from directdl.contracts.template import Protocol, TemplateFormat
from directdl.destinations import DEFAULT_DENIED, canonical_network

AGENT = "host-agent"
REGISTRATION = "registration"

Millis = Annotated[int, Field(ge=1, le=3_600_000)]
# One network in CIDR form ("169.254.0.0/16"; a bare address is one host), made canonical.
Cidr = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(canonical_network)]
Networks = Annotated[list[Cidr], Field(max_length=1024)]


class Timeouts(BaseModel):
    """CloudStack's three direct-download settings, in milliseconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_ms: Millis = 5000
    socket_ms: Millis = 5000
    connection_request_ms: Millis = 5000


class DownloadAccepted(Result):
    job_id: Id
    state: Token


class DownloadTemplate(Command):
    """Download a template into this host's pool, verify it, and report the outcome."""

    routing_key: ClassVar[str] = "host.{host_id}.template.download"
    sent_by = senders.Services((senders.REGISTRATION,))
    producers = (REGISTRATION,)
    consumers = (AGENT,)
    emits = (
        "template.download.progress",
        "template.download.completed",
        "template.download.failed",
    )
    result = DownloadAccepted

    job_id: Id
    deploy_id: Id
    template_id: Id
    url: Url
    protocol: Protocol
    format: TemplateFormat
    checksum: Digest | None = Field(None, description="{ALGO}hex; none means report SHA-256")
    headers: Headers = Field(default_factory=dict)
    pool_id: Id | None = Field(None, description="The agent's pool when not given.")
    expected_size: Bytes | None = None
    timeouts: Timeouts = Timeouts()
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    checksum_attempts: Annotated[int, Field(ge=1, le=5)] = 2
    denied_networks: Networks = Field(
        default_factory=lambda: list(DEFAULT_DENIED),
        description="No connection goes there, through a redirect or a mirror either; "
        "they win over allowed_networks.",
    )
    allowed_networks: Networks = Field(
        default_factory=list, description="When not empty, the only networks to connect to."
    )


class DownloadReport(BaseModel):
    """What every download event names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: Id
    deploy_id: Id
    template_id: Id
    host_id: Id
    pool_id: Id


class DownloadProgress(Event, DownloadReport):
    """At most once a second while bytes arrive."""

    routing_key: ClassVar[str] = "template.download.progress"
    sent_by = senders.THE_HOST
    producers = (AGENT,)

    bytes_done: Bytes
    total: Bytes | None
    rate_bps: Rate


class DownloadCompleted(Event, DownloadReport):
    """The template is on the pool under its final name, verified."""

    routing_key: ClassVar[str] = "template.download.completed"
    sent_by = senders.THE_HOST
    producers = (AGENT,)
    consumers = (REGISTRATION,)

    path: Path
    size: Bytes
    digest: Digest = Field(description="The verified digest, {ALGO}hex")
    cached: bool
    duration_s: Seconds


class DownloadFailed(Event, DownloadReport):
    """Nothing was left on the pool. `terminal` means another host would fail the same way."""

    routing_key: ClassVar[str] = "template.download.failed"
    sent_by = senders.THE_HOST
    producers = (AGENT,)
    consumers = (REGISTRATION,)

    code: Token
    message: Text
    terminal: bool

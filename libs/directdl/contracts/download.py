"""The host agent's download command and what it reports back."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts.base import Command, Event, Result
from directdl.contracts.template import Protocol, TemplateFormat

AGENT = "host-agent"
REGISTRATION = "registration"

Millis = Annotated[int, Field(ge=1, le=3_600_000)]


class Timeouts(BaseModel):
    """CloudStack's three direct-download settings, in milliseconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_ms: Millis = 5000
    socket_ms: Millis = 5000
    connection_request_ms: Millis = 5000


class DownloadAccepted(Result):
    job_id: str
    state: str


class DownloadTemplate(Command):
    """Download a template into this host's pool, verify it, and report the outcome."""

    routing_key: ClassVar[str] = "host.{host_id}.template.download"
    producers = (REGISTRATION,)
    consumers = (AGENT,)
    emits = (
        "template.download.progress",
        "template.download.completed",
        "template.download.failed",
    )
    result = DownloadAccepted

    job_id: str
    deploy_id: str
    template_id: str
    url: str
    protocol: Protocol
    format: TemplateFormat
    checksum: str | None = Field(None, description="{ALGO}hex; none means report SHA-256")
    headers: dict[str, str] = Field(default_factory=dict)
    pool_id: str | None = Field(None, description="The agent's pool when not given.")
    expected_size: int | None = Field(None, ge=0)
    timeouts: Timeouts = Timeouts()
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    checksum_attempts: Annotated[int, Field(ge=1, le=5)] = 2


class DownloadReport(BaseModel):
    """What every download event names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    deploy_id: str
    template_id: str
    host_id: str
    pool_id: str


class DownloadProgress(Event, DownloadReport):
    """At most once a second while bytes arrive."""

    routing_key: ClassVar[str] = "template.download.progress"
    producers = (AGENT,)

    bytes_done: int
    total: int | None
    rate_bps: float


class DownloadCompleted(Event, DownloadReport):
    """The template is on the pool under its final name, verified."""

    routing_key: ClassVar[str] = "template.download.completed"
    producers = (AGENT,)
    consumers = (REGISTRATION,)

    path: str
    size: int
    digest: str = Field(description="The verified digest, {ALGO}hex")
    cached: bool
    duration_s: float


class DownloadFailed(Event, DownloadReport):
    """Nothing was left on the pool. `terminal` means another host would fail the same way."""

    routing_key: ClassVar[str] = "template.download.failed"
    producers = (AGENT,)
    consumers = (REGISTRATION,)

    code: str
    message: str
    terminal: bool

"""Pre-caching a template on many hosts of a zone at once, as Nova pre-caches an aggregate."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import ID_MAX, MANY, Count, Id, Short, Text

HostIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=ID_MAX)]],
    Field(min_length=1, max_length=MANY),
]


class PrepareState(StrEnum):
    """A host's part of a prepare: waiting for a free slot, downloading, or ended."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # downloaded and verified
    CACHED = "CACHED"  # the host already held a verified copy: nothing was fetched
    FAILED = "FAILED"

    @property
    def ended(self) -> bool:
        return self in (PrepareState.SUCCEEDED, PrepareState.CACHED, PrepareState.FAILED)


class PreparedHost(BaseModel):
    """One host of a prepare: its deploy (one host, no fail-over), and how it ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host_id: Id
    state: PrepareState
    deploy_id: Id | None = None
    code: Short | None = Field(
        None, description="Why it failed: a DownloadFailure code, or an error code."
    )
    message: Text | None = None


class PrepareResult(Result):
    """The reply to template.prepare, once every host has ended. It is a success even when
    some hosts, or all, failed: each host's state says how it did."""

    prepare_id: Id
    template_id: Id
    zone_id: Id
    hosts: Annotated[list[PreparedHost], Field(max_length=MANY)]


class PrepareTemplate(Command):
    """Copy a template to every Up host of a zone, or to the hosts named, at most
    `directdl.template.prepare.concurrency` at a time, each with a deploy of its own. The
    reply comes once every host has ended; template.prepare.progress follows each host."""

    routing_key: ClassVar[str] = "template.prepare"
    result = PrepareResult

    template_id: Id
    zone_id: Id
    host_ids: HostIds | None = Field(None, description="None: every Up host of the zone.")
    pool_id: Id | None = None


class TemplatePrepareProgress(Event):
    """A host of a prepare changed state."""

    routing_key: ClassVar[str] = "template.prepare.progress"
    sent_by = senders.Services((senders.REGISTRATION,))

    prepare_id: Id
    template_id: Id
    zone_id: Id
    host_id: Id
    state: PrepareState
    deploy_id: Id | None = None
    code: Short | None = None
    message: Text | None = None
    done: Count = Field(description="Hosts that have ended, this one included.")
    total: Count


class TemplatePrepared(Event):
    """Every host of a prepare has ended."""

    routing_key: ClassVar[str] = "template.prepared"
    sent_by = senders.Services((senders.REGISTRATION,))

    prepare_id: Id
    template_id: Id
    zone_id: Id
    hosts: Annotated[list[PreparedHost], Field(max_length=MANY)]

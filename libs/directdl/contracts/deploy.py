"""Deploying a template: the command, its attempts across hosts, and the outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import (
    MANY,
    Bytes,
    Count,
    Digest,
    Id,
    Page,
    Path,
    Rate,
    Seconds,
    Text,
)
from directdl.contracts.download import DownloadFailure

# A deploy makes at most 3; the bound leaves room should that number grow.
Attempts = Annotated[list["DeployAttempt"], Field(max_length=20)]
# A deploy id a client may choose: a UUID, as registration makes them.
DeployId = Annotated[
    str,
    StringConstraints(
        max_length=36,
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    ),
]

REGISTRATION = "registration"


class AttemptState(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class DeployAttempt(BaseModel):
    """One host's try. A deploy makes at most 3, each on a different Up host of the zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: Id
    host_id: Id
    state: AttemptState
    error_code: DownloadFailure | None = None
    message: Text | None = None
    started_at: datetime
    finished_at: datetime | None = None
    bytes_done: Bytes | None = Field(
        None, description="Bytes fetched, as the host's last progress (or its completion) said."
    )
    total: Bytes | None = Field(None, description="Bytes expected, when the host knew.")
    rate_bps: Rate | None = Field(None, description="Bytes a second, at the last progress.")
    progress_at: datetime | None = Field(None, description="When the last progress arrived.")


class TemplateDeployedFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    deploy_id: Id
    template_id: Id
    zone_id: Id
    host_id: Id
    pool_id: Id
    path: Path
    size: Bytes
    digest: Digest = Field(description="The digest the agent verified, {ALGO}hex")
    image_digest: Digest | None = Field(
        None, description="{SHA-256}hex of the file on the pool, when it differs from digest"
    )
    cached: bool = Field(description="The template was already on the pool; nothing was fetched.")
    duration_s: Seconds
    attempts: Attempts


class DeployResult(Result, TemplateDeployedFields):
    """The reply to template.deploy when it succeeded."""


class DeployTemplate(Command):
    """Put a template on a host's primary storage, downloading it straight from its source.
    The reply comes when the deploy has ended: a DeployResult, or an error whose details list
    every attempt."""

    routing_key: ClassVar[str] = "template.deploy"
    result = DeployResult

    template_id: Id
    zone_id: Id
    host_id: Id | None = None
    pool_id: Id | None = None
    deploy_id: DeployId | None = Field(
        None,
        description="The new deploy's id, chosen by the caller so that it knows it at once; "
        "one already taken is refused (CONFLICT). Registration makes one when none is given.",
    )


class TemplateDeployed(Event, TemplateDeployedFields):
    """A template is on a pool, verified."""

    routing_key: ClassVar[str] = "template.deployed"
    sent_by = senders.Services((senders.REGISTRATION,))


class TemplateDeployFailed(Event):
    """Every attempt failed, or one failed in a way no other host can fix."""

    routing_key: ClassVar[str] = "template.deploy.failed"
    sent_by = senders.Services((senders.REGISTRATION,))

    deploy_id: Id
    template_id: Id
    zone_id: Id
    code: DownloadFailure = Field(description="The last attempt's failure code.")
    message: Text
    attempts: Attempts


class DeployView(Result):
    """A deploy as registration remembers it: running, or how it ended. The answer to
    deploy.get, and each item of deploy.list."""

    deploy_id: Id
    template_id: Id
    zone_id: Id
    state: AttemptState
    queued: bool = Field(
        description="Running, and its host has reported no progress yet: the download waits "
        "for a free worker there."
    )
    host_id: Id | None = Field(
        None, description="The running attempt's host, or the one the template is on."
    )
    bytes_done: Bytes | None = Field(None, description="Of the latest attempt.")
    total: Bytes | None = Field(None, description="Of the latest attempt, when known.")
    rate_bps: Rate | None = Field(None, description="Of the latest attempt, at its last progress.")
    created_at: datetime
    updated_at: datetime
    duration_s: Seconds = Field(description="Until it ended, or until now while it runs.")
    attempts: Attempts
    # When it succeeded.
    pool_id: Id | None = None
    path: Path | None = None
    size: Bytes | None = None
    digest: Digest | None = None
    image_digest: Digest | None = None
    cached: bool | None = None
    # When it failed.
    code: DownloadFailure | None = None
    message: Text | None = None


class DeployPage(Result):
    items: Annotated[list[DeployView], Field(max_length=MANY)]
    total: Count
    page: Page
    page_size: Count


class ListDeploys(Command):
    """List deploys, newest first, filtered and paged."""

    routing_key: ClassVar[str] = "deploy.list"
    result = DeployPage

    template_id: Id | None = None
    zone_id: Id | None = None
    host_id: Id | None = Field(None, description="Deploys that made an attempt on this host.")
    state: AttemptState | None = None
    id_prefix: Id | None = Field(
        None, description="Deploys whose id starts so: a unique prefix names one, as in git."
    )
    page: Page = 1
    page_size: Annotated[int, Field(ge=1, le=500)] = 50


class GetDeploy(Command):
    """Describe one deploy: its state, attempts, bytes, rate, duration and outcome."""

    routing_key: ClassVar[str] = "deploy.get"
    result = DeployView

    deploy_id: Id

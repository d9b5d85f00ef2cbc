"""Deploying a template: the command, its attempts across hosts, and the outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import Bytes, Digest, Id, Path, Seconds, Text
from directdl.contracts.download import DownloadFailure

# A deploy makes at most 3; the bound leaves room should that number grow.
Attempts = Annotated[list["DeployAttempt"], Field(max_length=20)]

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

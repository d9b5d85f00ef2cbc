"""Deploying a template: the command, its attempts across hosts, and the outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts.base import Command, Event, Result

REGISTRATION = "registration"


class AttemptState(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class DeployAttempt(BaseModel):
    """One host's try. A deploy makes at most 3, each on a different Up host of the zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    host_id: str
    state: AttemptState
    error_code: str | None = None
    message: str | None = None
    started_at: datetime
    finished_at: datetime | None = None


class TemplateDeployedFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    deploy_id: str
    template_id: str
    zone_id: str
    host_id: str
    pool_id: str
    path: str
    size: int
    digest: str = Field(description="The digest the agent verified, {ALGO}hex")
    cached: bool = Field(description="The template was already on the pool; nothing was fetched.")
    duration_s: float
    attempts: list[DeployAttempt]


class DeployResult(Result, TemplateDeployedFields):
    """The reply to template.deploy when it succeeded."""


class DeployTemplate(Command):
    """Put a template on a host's primary storage, downloading it straight from its source.
    The reply comes when the deploy has ended: a DeployResult, or an error whose details list
    every attempt."""

    routing_key: ClassVar[str] = "template.deploy"
    consumers = (REGISTRATION,)
    emits = ("template.deployed", "template.deploy.failed")
    result = DeployResult

    template_id: str = Field(min_length=1)
    zone_id: str = Field(min_length=1)
    host_id: str | None = None
    pool_id: str | None = None


class TemplateDeployed(Event, TemplateDeployedFields):
    """A template is on a pool, verified."""

    routing_key: ClassVar[str] = "template.deployed"
    producers = (REGISTRATION,)


class TemplateDeployFailed(Event):
    """Every attempt failed, or one failed in a way no other host can fix."""

    routing_key: ClassVar[str] = "template.deploy.failed"
    producers = (REGISTRATION,)

    deploy_id: str
    template_id: str
    zone_id: str
    code: str
    message: str
    attempts: list[DeployAttempt]

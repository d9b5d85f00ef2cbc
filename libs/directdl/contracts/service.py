"""Service messages: operators ask every running process to announce itself, and each does."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from directdl.contracts import senders
from directdl.contracts.base import Event
from directdl.contracts.bounds import Id, Name, Token, Url


class DiscoverServices(Event):
    """Every running process that hears it answers with service.announced; a standby
    replica (single active consumer) does not hear it, and replicas sharing a queue take
    turns, so one of them answers each time."""

    routing_key: ClassVar[str] = "service.discover"


class ServiceAnnounced(Event):
    """A process says who it is and where its health endpoints are: when it starts, and on
    each service.discover."""

    routing_key: ClassVar[str] = "service.announced"
    sent_by = senders.SelfNamed()

    service: Name = Field(
        description="The process's broker identity: registration, certificate, "
        "sync-scheduler or host-agent-<host id>."
    )
    instance: Id = Field(description="A UUID of this process start; replicas each have their own.")
    health_url: Url | None = Field(
        description="Where /healthz, /readyz and /metrics answer; None without a health server."
    )
    version: Token = Field(description="The directdl package version the process runs.")
    started_at: AwareDatetime
    host_id: Id | None = Field(None, description="A host agent's host.")

    @model_validator(mode="after")
    def _host_agent_names_its_host(self) -> Self:
        # The sender check trusts `service`; `host_id` must say the same, or a reader would
        # believe one host's agent about another.
        is_agent = senders.is_host_user(self.service)
        if self.host_id is not None and self.service != senders.host_user(self.host_id):
            raise ValueError(f"service {self.service!r} is not the agent of host {self.host_id!r}")
        if is_agent and self.host_id is None:
            raise ValueError(f"host agent {self.service!r} must name its host_id")
        return self

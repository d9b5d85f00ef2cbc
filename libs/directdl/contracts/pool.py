"""A pool's cache of templates: its limits, evicting copies, and what each host removed."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import MANY, SECONDS_MAX, Bytes, Count, Id, Path

Age = Annotated[int, Field(ge=0, le=int(SECONDS_MAX))]


class CachePolicy(BaseModel):
    """How much a pool keeps: the settings directdl.pool.cache.max.bytes and .max.age."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: Bytes = Field(0, description="The copies' total size at most; 0: no cap.")
    max_age_s: Age = Field(0, description="Unused for this long, a copy goes; 0: no limit.")


class RemovalReason(StrEnum):
    DELETED = "DELETED"  # the template left the catalogue
    REQUESTED = "REQUESTED"  # template.evict
    CAP = "CAP"  # the pool held more than max_bytes
    AGE = "AGE"  # unused for longer than max_age_s


class RemovedCopy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: Id
    path: Path
    size: Bytes
    reason: RemovalReason


class KeptCopy(BaseModel):
    """A copy asked to go that stayed: a deploy or a download is using it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: Id
    reason: Annotated[str, Field(max_length=255)]


class EvictTemplates(Command):
    """Remove copies from this host's pool: the templates named, or every copy not in use."""

    routing_key: ClassVar[str] = "host.{host_id}.template.evict"
    sent_by = senders.Services((senders.REGISTRATION,))

    template_ids: Annotated[list[Id], Field(max_length=MANY)] | None = Field(
        None, description="None: every copy the pool holds."
    )
    reason: RemovalReason = RemovalReason.REQUESTED
    policy: CachePolicy | None = Field(None, description="The pool's limits now, when known.")


class CopiesRemoved(Event):
    """What a host removed from its pool, and why; also what it was asked to and kept."""

    routing_key: ClassVar[str] = "template.copies.removed"
    sent_by = senders.THE_HOST

    host_id: Id
    pool_id: Id
    removed: Annotated[list[RemovedCopy], Field(max_length=MANY)]
    kept: Annotated[list[KeptCopy], Field(max_length=MANY)] = Field(default_factory=list)
    freed_bytes: Bytes


class EvictionRequested(Result):
    """The hosts asked to evict; each reports what it removed in template.copies.removed."""

    hosts: Annotated[list[Id], Field(max_length=MANY)]
    copies: Count = Field(description="Copies those hosts last said they hold, of the templates.")


class EvictTemplate(Command):
    """Remove copies of a template, or all of a host's or a zone's copies, from the pools.
    At least one of template_id, host_id and zone_id; together they narrow the choice."""

    routing_key: ClassVar[str] = "template.evict"
    result = EvictionRequested

    template_id: Id | None = None
    host_id: Id | None = None
    zone_id: Id | None = None

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if self.template_id is None and self.host_id is None and self.zone_id is None:
            raise ValueError(
                "name a template_id, a host_id or a zone_id to evict from "
                "(CLI: --template, --host or --zone)"
            )
        return self

"""Sync-scheduler messages: runs that bring hosts' certificates up to date, and zone switches."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import MANY, Count, Id, Seconds, Token


class SyncReport(Result):
    run_id: Id
    trigger: Token = Field(description="timer, request, or host (a host that came Up)")
    zones: Annotated[list[Id], Field(max_length=MANY)]
    hosts_checked: Count
    pushed: Count = Field(description="cert.provision requests sent for missing certificates")
    removed: Count = Field(description="cert.revoke requests sent for revoked ones still present")
    failed: Count = Field(description="requests that could not be sent")
    started_at: datetime
    duration_s: Seconds


class RunSync(Command):
    """Run now, and reply with the run's report."""

    routing_key: ClassVar[str] = "sync.run"
    result = SyncReport

    zone_id: Id | None = Field(None, description="Only this zone (enabled or not).")


class SyncTick(Command):
    """The timer's nudge. Every replica's timer sends one; the one active consumer runs."""

    routing_key: ClassVar[str] = "sync.tick"
    sent_by = senders.Services((senders.SYNC_SCHEDULER,))


class SyncRunCompleted(Event, SyncReport):
    routing_key: ClassVar[str] = "sync.run.completed"
    sent_by = senders.Services((senders.SYNC_SCHEDULER,))


class ZoneSync(Result):
    zone_id: Id
    enabled: bool


class EnableZone(Command):
    """Include a zone in sync runs again."""

    routing_key: ClassVar[str] = "zone.enable"
    result = ZoneSync

    zone_id: Id


class DisableZone(Command):
    """Leave a zone out of sync runs (hosts coming Up in it are left alone too)."""

    routing_key: ClassVar[str] = "zone.disable"
    result = ZoneSync

    zone_id: Id


class ZoneList(Result):
    items: Annotated[list[ZoneSync], Field(max_length=MANY)]


class ListZones(Command):
    """The zones heard of from their hosts' heartbeats, and whether each is in sync runs."""

    routing_key: ClassVar[str] = "zone.list"
    result = ZoneList

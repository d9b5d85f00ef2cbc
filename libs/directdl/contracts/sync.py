"""Sync-scheduler messages: runs that bring hosts' certificates up to date, and zone switches."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from directdl.contracts.base import Command, Event, Result

SCHEDULER = "sync-scheduler"


class SyncReport(Result):
    run_id: str
    trigger: str = Field(description="timer, request, or host (a host that came Up)")
    zones: list[str]
    hosts_checked: int
    pushed: int = Field(description="cert.provision requests sent for missing certificates")
    removed: int = Field(description="cert.revoke requests sent for revoked ones still present")
    failed: int = Field(description="requests that could not be sent")
    started_at: datetime
    duration_s: float


class RunSync(Command):
    """Run now, and reply with the run's report."""

    routing_key: ClassVar[str] = "sync.run"
    consumers = (SCHEDULER,)
    emits = ("sync.run.completed", "cert.provision", "cert.revoke")
    result = SyncReport

    zone_id: str | None = Field(None, description="Only this zone (enabled or not).")


class SyncTick(Command):
    """The timer's nudge. Every replica's timer sends one; the one active consumer runs."""

    routing_key: ClassVar[str] = "sync.tick"
    producers = (SCHEDULER,)
    consumers = (SCHEDULER,)


class SyncRunCompleted(Event, SyncReport):
    routing_key: ClassVar[str] = "sync.run.completed"
    producers = (SCHEDULER,)


class ZoneSync(Result):
    zone_id: str
    enabled: bool


class EnableZone(Command):
    """Include a zone in sync runs again."""

    routing_key: ClassVar[str] = "zone.enable"
    consumers = (SCHEDULER,)
    result = ZoneSync

    zone_id: str = Field(min_length=1)


class DisableZone(Command):
    """Leave a zone out of sync runs (hosts coming Up in it are left alone too)."""

    routing_key: ClassVar[str] = "zone.disable"
    consumers = (SCHEDULER,)
    result = ZoneSync

    zone_id: str = Field(min_length=1)

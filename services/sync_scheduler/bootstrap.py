"""Wires the sync-scheduler: its settings, dependencies and dispatch table, no effects."""

from __future__ import annotations

from pathlib import Path

from directdl.liveness import HeartbeatClock
from directdl.runtime.live_settings import LiveSettings
from directdl.runtime.service import Service, ServiceDefinition
from sync_scheduler.adapters.orm import settings as settings_table
from sync_scheduler.adapters.orm import store
from sync_scheduler.config import SchedulerSettings
from sync_scheduler.handlers import HANDLERS
from sync_scheduler.uow import SchedulerUnitOfWork

NAME = "sync-scheduler"
MIGRATIONS = Path(__file__).parent / "migrations"
INTERVAL = "direct.download.certificate.background.task.interval"
# While the task is disabled, how often the timer looks whether it has been enabled.
IDLE_POLL_SECONDS = 5.0


def bootstrap(settings: SchedulerSettings | None = None) -> Service[SchedulerUnitOfWork]:
    settings = settings or SchedulerSettings()
    live = LiveSettings(NAME, settings_table)

    def interval() -> float:
        return float(live(INTERVAL)) * 3600  # hours, as in CloudStack; fractions allowed

    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            handlers=HANDLERS,
            dependencies={
                "live": live,
                # How far behind the heartbeats this process is: liveness is judged by it.
                "heartbeat_clock": HeartbeatClock(),
                "interval": interval,
                "tick_interval": lambda: interval() or IDLE_POLL_SECONDS,
            },
            store=store,
            uow_factory=SchedulerUnitOfWork,
            migrations=MIGRATIONS,
            live_settings=live,
            # Replicas share the queues; RabbitMQ hands them to one consumer at a time.
            single_active_consumer=True,
            tasks=live.tasks(),
        )
    )

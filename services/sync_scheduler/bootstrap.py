"""Wires the sync-scheduler: projections, the timer, and single-active-consumer queues."""

from __future__ import annotations

from pathlib import Path

from directdl.contracts.sync import SyncTick
from directdl.runtime.live_settings import LiveSettings, with_settings
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import AtStart, Periodic
from sync_scheduler.adapters.orm import settings as settings_table
from sync_scheduler.adapters.orm import store
from sync_scheduler.config import SchedulerSettings
from sync_scheduler.handlers import queues
from sync_scheduler.uow import SchedulerUnitOfWork

NAME = "sync-scheduler"
MIGRATIONS = Path(__file__).parent / "migrations"
INTERVAL = "direct.download.certificate.background.task.interval"
# While the task is disabled, how often the timer looks whether it has been enabled.
IDLE_POLL_SECONDS = 5.0


def bootstrap(settings: SchedulerSettings | None = None) -> Service:
    settings = settings or SchedulerSettings()
    live = LiveSettings(NAME, settings_table)

    def interval() -> float:
        return float(live(INTERVAL)) * 3600  # hours, as in CloudStack; fractions allowed

    def send_tick(service: Service) -> None:
        if interval() > 0:
            with service.transaction() as uow:
                uow.emit(SyncTick())

    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            queues=with_settings(queues(interval), live),
            store=store,
            uow_factory=SchedulerUnitOfWork,
            migrations=MIGRATIONS,
            shared_queues=live.shared_routes(),
            live_settings=live,
            # Replicas share the queues; RabbitMQ hands them to one consumer at a time.
            single_active_consumer=True,
            tasks=(
                AtStart(live.announce),
                Periodic(
                    "sync-timer",
                    lambda: interval() or IDLE_POLL_SECONDS,
                    send_tick,
                    run_at_start=False,
                ),
            ),
        )
    )

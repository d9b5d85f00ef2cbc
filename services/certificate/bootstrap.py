"""Wires the certificate service: its settings, dependencies and dispatch table, no effects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from certificate.adapters import gauges
from certificate.adapters.answers_clock import AnswersClock
from certificate.adapters.orm import settings as settings_table
from certificate.adapters.orm import store
from certificate.config import CertificateSettings
from certificate.handlers import HANDLERS
from certificate.uow import CertificateUnitOfWork
from directdl.liveness import HeartbeatClock
from directdl.runtime.live_settings import LiveSettings
from directdl.runtime.service import Service, ServiceDefinition

NAME = "certificate"
MIGRATIONS = Path(__file__).parent / "migrations"
HOST_TIMEOUT = "directdl.certificate.host.timeout"
EXPIRY_WARNING_DAYS = "directdl.certificate.expiry.warning.days"


def dependencies(settings: CertificateSettings, live: LiveSettings) -> dict[str, Any]:
    """What the handlers and timers need, by parameter name. The global settings are read at
    each use, so a change applies at once."""
    return {
        "live": live,
        "clock": lambda: datetime.now(UTC),
        # Liveness and lateness are judged at what the consumers have read, not the wall clock.
        "heartbeat_clock": HeartbeatClock(),
        # Long enough for the timer to tick 3 times: a longer gap means the process stood still.
        "answers_clock": AnswersClock(settle=3 * settings.timer_interval + 1),
        "host_timeout": lambda: float(live(HOST_TIMEOUT)),
        "expiry_warning_days": lambda: int(live(EXPIRY_WARNING_DAYS)),
        "late_answers_interval": lambda: settings.timer_interval,
        "expiry_check_interval": lambda: settings.expiry_check_interval,
    }


def bootstrap(settings: CertificateSettings | None = None) -> Service[CertificateUnitOfWork]:
    settings = settings or CertificateSettings()
    live = LiveSettings(NAME, settings_table)
    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            handlers=HANDLERS,
            dependencies=dependencies(settings, live),
            live_settings=live,
            store=store,
            uow_factory=CertificateUnitOfWork,
            migrations=MIGRATIONS,
            tasks=live.tasks(),
            collectors={"expiry": gauges.certificate_expiry},
        )
    )

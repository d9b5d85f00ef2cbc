"""Wires the certificate service: settings, tables, handlers, and its two timers."""

from __future__ import annotations

from pathlib import Path

from certificate import fanout
from certificate.adapters.orm import store
from certificate.config import CertificateSettings
from certificate.expiry import warn_expiring
from certificate.handlers import Policy, queues
from certificate.uow import CertificateUnitOfWork
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import Periodic

NAME = "certificate"
MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(settings: CertificateSettings | None = None) -> Service:
    settings = settings or CertificateSettings()

    def late_answers(service: Service) -> None:
        with service.transaction() as uow:
            assert isinstance(uow, CertificateUnitOfWork)
            fanout.expire(uow, settings.host_timeout)

    def expiry_watch(service: Service) -> None:
        with service.transaction() as uow:
            assert isinstance(uow, CertificateUnitOfWork)
            warn_expiring(uow, settings.expiry_warning_days)

    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            queues=queues(Policy(host_timeout=settings.host_timeout)),
            store=store,
            uow_factory=CertificateUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(
                Periodic("late-answers", lambda: settings.timer_interval, late_answers),
                Periodic("expiry-watch", lambda: settings.expiry_check_interval, expiry_watch),
            ),
        )
    )

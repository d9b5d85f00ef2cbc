"""Wires the certificate service: settings, tables, handlers, and its two timers."""

from __future__ import annotations

from pathlib import Path

from certificate import fanout
from certificate.adapters.orm import settings as settings_table
from certificate.adapters.orm import store
from certificate.config import CertificateSettings
from certificate.expiry import warn_expiring
from certificate.handlers import Policy, queues
from certificate.uow import CertificateUnitOfWork
from directdl.runtime.live_settings import LiveSettings, with_settings
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import AtStart, Periodic

NAME = "certificate"
MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(settings: CertificateSettings | None = None) -> Service:
    settings = settings or CertificateSettings()
    live = LiveSettings(NAME, settings_table)
    policy = Policy(setting=live)

    def late_answers(service: Service) -> None:
        with service.transaction() as uow:
            assert isinstance(uow, CertificateUnitOfWork)
            fanout.expire(uow, policy.host_timeout)

    def expiry_watch(service: Service) -> None:
        with service.transaction() as uow:
            assert isinstance(uow, CertificateUnitOfWork)
            warn_expiring(uow, policy.expiry_warning_days)

    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            queues=with_settings(queues(policy), live),
            shared_queues=live.shared_routes(),
            live_settings=live,
            store=store,
            uow_factory=CertificateUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(
                AtStart(live.announce),
                Periodic("late-answers", lambda: settings.timer_interval, late_answers),
                Periodic("expiry-watch", lambda: settings.expiry_check_interval, expiry_watch),
            ),
        )
    )

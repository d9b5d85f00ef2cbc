"""Wires the registration service: settings, tables, handlers, unit of work."""

from __future__ import annotations

from pathlib import Path

from directdl.runtime.service import Service, ServiceDefinition
from registration.adapters.orm import store
from registration.config import RegistrationSettings
from registration.handlers import ROUTES
from registration.uow import RegistrationUnitOfWork

NAME = "registration"
MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(settings: RegistrationSettings | None = None) -> Service:
    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings or RegistrationSettings(),
            routes=ROUTES,
            store=store,
            uow_factory=RegistrationUnitOfWork,
            migrations=MIGRATIONS,
        )
    )

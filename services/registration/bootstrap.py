"""Wires the registration service: settings, tables, handlers, unit of work, timers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from directdl.bus.processing import Route, routes
from directdl.contracts import deploy, download, host
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import Periodic
from registration import deploying
from registration.adapters.orm import store
from registration.config import RegistrationSettings
from registration.handlers import COMMANDS
from registration.uow import RegistrationUnitOfWork

NAME = "registration"
MIGRATIONS = Path(__file__).parent / "migrations"


def download_policy(settings: RegistrationSettings) -> deploying.DownloadPolicy:
    return deploying.DownloadPolicy(
        timeouts=download.Timeouts(
            connect_ms=settings.download_connect_timeout_ms,
            socket_ms=settings.download_socket_timeout_ms,
            connection_request_ms=settings.download_connection_request_timeout_ms,
        ),
        max_attempts=settings.download_max_attempts,
        checksum_attempts=settings.checksum_attempts,
    )


def queues(policy: deploying.DownloadPolicy) -> dict[str, dict[str, Route]]:
    return {
        "commands": COMMANDS
        | routes(
            (deploy.DeployTemplate, partial(deploying.deploy_template, policy=policy)),
            (host.ListHosts, deploying.list_hosts),
        ),
        "events": routes(
            (host.HostHeartbeat, partial(deploying.host_heartbeat, policy=policy)),
            (download.DownloadCompleted, deploying.download_completed),
            (download.DownloadFailed, partial(deploying.download_failed, policy=policy)),
        ),
    }


def bootstrap(settings: RegistrationSettings | None = None) -> Service:
    settings = settings or RegistrationSettings()
    policy = download_policy(settings)

    def watchdog(service: Service) -> None:
        with service.transaction() as uow:
            assert isinstance(uow, RegistrationUnitOfWork)
            deploying.fail_silent_hosts(uow, policy)

    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            queues=queues(policy),
            store=store,
            uow_factory=RegistrationUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(Periodic("watchdog", lambda: settings.watchdog_interval, watchdog),),
        )
    )

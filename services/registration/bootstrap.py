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
from registration.adapters.url_check import UrlChecker
from registration.config import RegistrationSettings
from registration.handlers import SizeOf, commands
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


def size_checker(settings: RegistrationSettings) -> SizeOf:
    if not settings.check_urls:
        return lambda _url, _protocol, _headers: None
    return UrlChecker(
        connect_timeout=settings.download_connect_timeout_ms / 1000,
        read_timeout=settings.download_socket_timeout_ms / 1000,
    ).size_of


def queues(policy: deploying.DownloadPolicy, size_of: SizeOf) -> dict[str, dict[str, Route]]:
    return {
        "commands": commands(size_of)
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
            queues=queues(policy, size_checker(settings)),
            store=store,
            uow_factory=RegistrationUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(Periodic("watchdog", lambda: settings.watchdog_interval, watchdog),),
        )
    )

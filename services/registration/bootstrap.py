"""Wires the registration service: settings, tables, handlers, unit of work, timers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from directdl.bus.processing import Route, routes, without_inbox
from directdl.contracts import deploy, download, host
from directdl.contracts.template import Protocol
from directdl.runtime.live_settings import LiveSettings, with_settings
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import AtStart, Periodic
from registration import deploying
from registration.adapters.orm import settings as settings_table
from registration.adapters.orm import store
from registration.adapters.url_check import UrlChecker
from registration.config import RegistrationSettings
from registration.handlers import SizeOf, commands
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork

NAME = "registration"
MIGRATIONS = Path(__file__).parent / "migrations"


def size_checker(settings: RegistrationSettings, live: LiveSettings) -> SizeOf:
    if not settings.check_urls:
        return lambda _url, _protocol, _headers: None

    def size_of(url: str, protocol: Protocol, headers: dict[str, str]) -> int | None:
        checker = UrlChecker(
            connect_timeout=live("direct.download.connect.timeout") / 1000,
            read_timeout=live("direct.download.socket.timeout") / 1000,
            policy=DownloadPolicy(setting=live).destinations,
        )
        return checker.size_of(url, protocol, headers)

    return size_of


def queues(policy: DownloadPolicy, size_of: SizeOf) -> dict[str, dict[str, Route]]:
    return {
        "commands": commands(size_of, lambda: policy.destinations)
        | routes(
            (deploy.DeployTemplate, partial(deploying.deploy_template, policy=policy)),
            (host.ListHosts, deploying.list_hosts),
        ),
        "events": without_inbox(
            routes(
                (host.HostHeartbeat, partial(deploying.host_heartbeat, policy=policy)),
                (download.DownloadCompleted, partial(deploying.download_completed, policy=policy)),
                (download.DownloadFailed, partial(deploying.download_failed, policy=policy)),
            ),
            host.HostHeartbeat,
        ),
    }


def bootstrap(settings: RegistrationSettings | None = None) -> Service:
    settings = settings or RegistrationSettings()
    live = LiveSettings(NAME, settings_table)
    policy = DownloadPolicy(setting=live)

    def watchdog(service: Service) -> None:
        with service.transaction() as uow:
            assert isinstance(uow, RegistrationUnitOfWork)
            deploying.fail_silent_hosts(uow, policy)

    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            queues=with_settings(queues(policy, size_checker(settings, live)), live),
            shared_queues=live.shared_routes(),
            live_settings=live,
            store=store,
            uow_factory=RegistrationUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(
                AtStart(live.announce),
                Periodic("watchdog", lambda: settings.watchdog_interval, watchdog),
            ),
        )
    )

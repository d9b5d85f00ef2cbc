"""Wires the registration service: its settings, dependencies and dispatch table, no effects."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from directdl.contracts.template import SourceProtocol
from directdl.runtime.live_settings import LiveSettings
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import Periodic
from registration.adapters import gauges
from registration.adapters.orm import settings as settings_table
from registration.adapters.orm import store
from registration.adapters.url_check import UrlChecker
from registration.clock import PULSE_S, ServiceClock
from registration.config import RegistrationSettings
from registration.handlers import HANDLERS, SizeOf
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork

NAME = "registration"
MIGRATIONS = Path(__file__).parent / "migrations"


def size_checker(settings: RegistrationSettings, live: LiveSettings) -> SizeOf:
    if not settings.check_urls:
        return lambda _url, _protocol, _headers: None

    def size_of(url: str, protocol: SourceProtocol, headers: dict[str, str]) -> int | None:
        checker = UrlChecker(
            connect_timeout=live("direct.download.connect.timeout") / 1000,
            read_timeout=live("direct.download.socket.timeout") / 1000,
            policy=DownloadPolicy(setting=live).destinations,
        )
        return checker.size_of(url, protocol, headers)

    return size_of


def bootstrap(settings: RegistrationSettings | None = None) -> Service[RegistrationUnitOfWork]:
    settings = settings or RegistrationSettings()
    live = LiveSettings(NAME, settings_table)
    policy = DownloadPolicy(setting=live)
    # One per process: every judgment of a host's liveness is made at it (see uow).
    clock = ServiceClock()
    return Service(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            handlers=HANDLERS,
            dependencies={
                "live": live,
                "policy": policy,
                "size_of": size_checker(settings, live),
                "destinations": lambda: policy.destinations,
                "watchdog_interval": lambda: settings.watchdog_interval,
            },
            live_settings=live,
            store=store,
            uow_factory=partial(RegistrationUnitOfWork, clock=clock),
            migrations=MIGRATIONS,
            tasks=(
                *live.tasks(),
                Periodic("clock", lambda: PULSE_S, lambda _service: clock.pulse()),
            ),
            collectors={"hosts": partial(gauges.hosts_by_state, clock=clock)},
        )
    )

"""Wires the gateway: its settings, its tables, the bus callers and the HTTP server, no effects."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.adapters.bus_caller import BusCaller
from api.adapters.http_server import HttpServer
from api.adapters.job_desk import JobDesk
from api.adapters.key_book import KeyBook
from api.adapters.orm import store
from api.adapters.secrets_box import SecretBox
from api.cloudstack.app import CloudStackApp
from api.cloudstack.table import APIS
from api.config import ApiSettings
from api.handlers import HANDLERS
from api.uow import ApiUnitOfWork
from directdl.bus.topology import Topology
from directdl.runtime.service import Service, ServiceDefinition

NAME = "api"
MIGRATIONS = Path(__file__).parent / "migrations"


def clock() -> datetime:
    return datetime.now(UTC)


class Gateway(Service[ApiUnitOfWork]):
    """The gateway's Service, with the HTTP side it serves beside its consumer."""

    http: HttpServer
    bus: BusCaller


def bootstrap(settings: ApiSettings | None = None) -> Gateway:
    settings = settings or ApiSettings()
    box = SecretBox(settings.secrets_key.get_secret_value())
    uow_factory = partial(ApiUnitOfWork, box=box)
    bus = BusCaller(
        settings.amqp_url,
        Topology(settings.exchange, settings.queue_prefix),
        settings.reply_timeout,
    )
    http = HttpServer(
        app=None,  # set below, once the service's sessions exist
        host=settings.listen_host,
        port=settings.listen_port,
        threads=settings.http_threads,
    )
    service = Gateway(
        ServiceDefinition(
            name=NAME,
            settings=settings,
            handlers=HANDLERS,
            dependencies={"clock": clock},
            store=store,
            uow_factory=uow_factory,
            migrations=MIGRATIONS,
            tasks=(http,),
            extra_checks={"http": lambda: _serving(http)},
            on_stopping=lambda _service: bus.close(),
        )
    )
    sessions: sessionmaker[Session] = service.sessions
    unit_of_work = partial(uow_factory, sessions)
    http.app = CloudStackApp(
        APIS,
        bus,
        JobDesk(unit_of_work, clock),
        KeyBook(unit_of_work, clock),
        clock,
        enforce_expires=settings.enforce_expires,
    )
    service.http, service.bus = http, bus
    return service


def _serving(http: HttpServer) -> None:
    if not http.serving.is_set():
        raise ConnectionError("the CloudStack API is not listening")

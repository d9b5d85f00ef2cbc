"""The run loop every service shares: migrate, consume, relay, serve health, stop on signal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.consumer import Consumer, ConsumerConfig
from directdl.bus.processing import Processor, Route
from directdl.bus.relay import OutboxRelay
from directdl.bus.store import MessageStore
from directdl.bus.topology import Topology
from directdl.runtime import db
from directdl.runtime.faults import Faults
from directdl.runtime.health import Check, HealthServer
from directdl.runtime.migrate import upgrade
from directdl.runtime.settings import ServiceSettings
from directdl.runtime.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass
class ServiceDefinition:
    """What makes one service different from another; `bootstrap()` in each service builds it."""

    name: str
    settings: ServiceSettings
    routes: Mapping[str, Route]
    store: MessageStore
    uow_factory: Callable[[sessionmaker[Session]], UnitOfWork]
    migrations: Path
    purpose: str = "commands"
    extra_checks: Mapping[str, Check] = field(default_factory=dict)


class Service:
    """A running service: wired, migrated, and ready to `run()` until stopped."""

    def __init__(self, definition: ServiceDefinition) -> None:
        self.definition = definition
        settings = definition.settings
        self.database_url = settings.resolved_database_url(definition.name)
        upgrade(definition.migrations, self.database_url)
        self.engine: Engine = db.make_engine(self.database_url)
        self.sessions = db.session_factory(self.engine)
        self.topology = Topology(settings.exchange, settings.queue_prefix)
        faults = Faults.from_env()
        self.processor = Processor(
            definition.routes,
            lambda: definition.uow_factory(self.sessions),
            definition.store,
            self.topology.exchange,
            faults=faults,
        )
        self.consumer = Consumer(
            ConsumerConfig(
                url=settings.amqp_url,
                topology=self.topology,
                service=definition.name,
                purpose=definition.purpose,
                bindings=tuple(definition.routes),
                prefetch=settings.prefetch,
                workers=settings.workers,
                max_attempts=settings.max_attempts,
            ),
            self.processor,
            OutboxRelay(definition.store, self.sessions, app_id=definition.name),
            faults,
        )
        self.health = HealthServer(
            settings.health_host,
            settings.health_port,
            {"broker": self._broker_ready, "database": lambda: db.ping(self.engine)}
            | dict(definition.extra_checks),
        )
        self.stop_event = threading.Event()

    def _broker_ready(self) -> None:
        if not self.consumer.connected.is_set():
            raise ConnectionError("not connected to the broker")

    def run(self) -> None:
        """Serve until `stop()`; blocks the calling thread."""
        self.health.start()
        log.info(
            "service.started",
            health_port=self.health.port,
            database=self.engine.url.render_as_string(),
        )
        try:
            self.consumer.run(self.stop_event)
        finally:
            self.health.stop()
            self.engine.dispose()
            log.info("service.stopped")

    def stop(self) -> None:
        self.stop_event.set()


def run_until_signalled(service: Service) -> None:
    """Stop cleanly on SIGTERM or SIGINT: in-flight messages finish and are acked."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.run()

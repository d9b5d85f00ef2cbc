"""The run loop every service shares: bind its table, consume, relay, serve health, stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, Generic, Protocol, TypeVar

import structlog
from prometheus_client.metrics_core import Metric
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.connection import broker_user
from directdl.bus.consumer import Consumer, ConsumerConfig, QueueSpec
from directdl.bus.dispatch import BoundTimer, Handlers
from directdl.bus.processing import Processor, check_emits
from directdl.bus.relay import OutboxRelay
from directdl.bus.relay_thread import RelayThread
from directdl.bus.store import MessageStore
from directdl.bus.topology import Topology
from directdl.contracts.base import Message
from directdl.contracts.senders import CENTRAL, is_host_user
from directdl.runtime import db, metrics
from directdl.runtime.announce import ANNOUNCE, Announcer, health_url
from directdl.runtime.faults import Faults
from directdl.runtime.health import Check, HealthServer
from directdl.runtime.migrate import upgrade
from directdl.runtime.settings import ServiceSettings
from directdl.runtime.tasks import AtStart, Periodic
from directdl.runtime.uow import UnitOfWork
from directdl.settings_catalog import MAX_MESSAGE_BYTES

log = structlog.get_logger(__name__)


class BackgroundTask(Protocol):
    """Work a service does besides consuming: a timer, a download runner."""

    def start(self, service: Service[Any]) -> None: ...

    def stop(self) -> None: ...


U = TypeVar("U", bound=UnitOfWork)

Gauges = Callable[["Service[U]"], Iterable[Metric]]
"""Metric families read from the running service each time /metrics is (`metrics.ScrapedGauge`)."""


@dataclass
class ServiceDefinition(Generic[U]):
    """What makes one service different from another; `bootstrap()` in each service builds it,
    without side effects: migrations and other start-up steps are the entry point's."""

    name: str
    settings: ServiceSettings
    # The service's dispatch table, and what its handlers and timers need, by parameter name.
    handlers: Handlers
    dependencies: Mapping[str, Any]
    store: MessageStore
    uow_factory: Callable[[sessionmaker[Session]], U]
    migrations: Path
    tasks: Sequence[BackgroundTask] = ()
    extra_checks: Mapping[str, Check] = field(default_factory=dict)
    on_stopping: Callable[[Service[U]], None] | None = None
    # Replicas take turns: RabbitMQ delivers each own queue to one consumer at a time.
    single_active_consumer: bool = False
    # The global settings as they are now (a LiveSettings); without it, their defaults apply.
    live_settings: Callable[[str], Any] | None = None
    # Fills routing keys addressed to one instance, such as a host agent's `host_id`.
    address: Mapping[str, str] = field(default_factory=dict)
    # Scrape-time gauges by name, besides the outbox's, which every service has.
    collectors: Mapping[str, Gauges[U]] = field(default_factory=dict)


class Service(Generic[U]):
    """A running service: wired, and ready to `migrate()` and `run()` until stopped."""

    def __init__(self, definition: ServiceDefinition[U]) -> None:
        self.definition = definition
        settings = definition.settings
        _check_identity(definition.name, settings.amqp_url)
        self.announcer = Announcer.starting(
            definition.name, self._health_url, definition.address.get("host_id")
        )
        self.bound = definition.handlers.bind(
            {**definition.dependencies, "announcer": self.announcer},
            {"owner": definition.name, **definition.address},
        )
        self.database_url = settings.resolved_database_url(definition.name)
        self.engine: Engine = db.make_engine(self.database_url)
        self.sessions = db.session_factory(self.engine)
        self.topology = Topology(settings.exchange, settings.queue_prefix)
        faults = Faults.from_env()
        self.processor = Processor(
            self.bound.routes,
            self.unit_of_work,
            definition.store,
            self.topology.exchange,
            faults=faults,
            service=definition.name,
            max_body_bytes=self._max_body_bytes(),
            batch_routes=self.bound.batch_routes,
        )
        relay = OutboxRelay(
            definition.store,
            self.sessions,
            app_id=definition.name,
            user_id=broker_user(settings.amqp_url),
        )
        self.consumer = Consumer(
            ConsumerConfig(
                url=settings.amqp_url,
                topology=self.topology,
                service=definition.name,
                queues=(
                    *(
                        QueueSpec(purpose, tuple(t), definition.single_active_consumer)
                        for purpose, t in self.bound.queues.items()
                    ),
                    *(
                        QueueSpec(name, tuple(t), shared=True)
                        for name, t in self.bound.shared.items()
                    ),
                    *(
                        QueueSpec(
                            purpose, tuple(t), definition.single_active_consumer, batched=True
                        )
                        for purpose, t in self.bound.batched.items()
                    ),
                ),
                prefetch=settings.prefetch,
                workers=settings.workers,
                max_attempts=settings.max_attempts,
            ),
            self.processor,
            RelayThread(relay, settings.amqp_url, definition.name),
            faults,
        )
        self.collectors = [
            metrics.ServiceCollector(definition.name, "outbox", relay.gauges),
            *(
                metrics.ServiceCollector(definition.name, name, partial(gauges, self))
                for name, gauges in definition.collectors.items()
            ),
        ]
        self.tasks: list[BackgroundTask] = [
            *definition.tasks,
            *([AtStart(self.announcer.announce)] if ANNOUNCE in self.bound.background else []),
            *(
                Periodic(t.name, t.interval, partial(_run_timer, timer=t), t.run_at_start)
                for t in self.bound.timers.values()
            ),
        ]
        self.health = HealthServer(
            settings.health_host,
            settings.health_port,
            {"broker": self._broker_ready, "database": lambda: db.ping(self.engine)}
            | dict(definition.extra_checks),
        )
        self.stop_event = threading.Event()
        if definition.on_stopping is not None:
            hook = definition.on_stopping
            self.consumer.on_stopping = lambda: hook(self)

    def migrate(self) -> None:
        """Bring the service's database to its newest schema; a start-up step, run before
        `run()` by the entry point (and by whatever starts a service in tests)."""
        upgrade(self.definition.migrations, self.database_url)

    def _health_url(self) -> str:
        settings = self.definition.settings
        return settings.health_url or health_url(settings.health_host, self.health.port)

    def _max_body_bytes(self) -> Callable[[], int] | None:
        live = self.definition.live_settings
        return None if live is None else lambda: int(live(MAX_MESSAGE_BYTES))

    def unit_of_work(self) -> U:
        return self.definition.uow_factory(self.sessions)

    @contextmanager
    def transaction(self, work: str) -> Iterator[U]:
        """A unit of work outside any delivery, for the timer or background `work` of that
        name in the dispatch table: what it emits goes through the outbox with its commit,
        and then the relay is woken, if there is anything to send. Emitting what the table
        does not list for it fails."""
        allowed = self._emits(work)
        with self.unit_of_work() as uow:
            yield uow
            check_emits(work, allowed, uow.outgoing)
            enqueued = self.processor.flush_outgoing(uow)
            uow.commit()
        if enqueued:
            self.consumer.wake_relay()

    def _emits(self, work: str) -> frozenset[type[Message]]:
        if work in self.bound.timers:
            return self.bound.timers[work].emits
        if work in self.bound.background:
            return self.bound.background[work]
        raise KeyError(f"{self.definition.name} has no timer or background work named {work!r}")

    def _broker_ready(self) -> None:
        if not self.consumer.connected.is_set():
            raise ConnectionError("not connected to the broker")
        relay = self.consumer.relay
        if relay is not None and not relay.connected.is_set():
            raise ConnectionError("the outbox relay is not connected to the broker")

    def run(self) -> None:
        """Serve until `stop()`; blocks the calling thread."""
        metrics.scrape_time.add(self.collectors)
        self.health.start()
        for task in self.tasks:
            task.start(self)
        log.info(
            "service.started",
            health_port=self.health.port,
            database=self.engine.url.render_as_string(),
        )
        try:
            self.consumer.run(self.stop_event)
        finally:
            for task in self.tasks:
                task.stop()
            self.health.stop()
            metrics.scrape_time.remove(self.collectors)
            self.engine.dispose()
            log.info("service.stopped")

    def stop(self) -> None:
        self.stop_event.set()


class IdentityMismatch(ValueError):
    """A service would connect as another broker user than its own name."""


def _run_timer(service: Service[Any], timer: BoundTimer) -> None:
    with service.transaction(timer.name) as uow:
        timer.run(uow)


def _check_identity(name: str, amqp_url: str) -> None:
    """Consumers believe a service's messages only from the broker user named after it, so a
    service connecting as anyone else would be ignored by all; better to refuse to start."""
    user = broker_user(amqp_url)
    if (name in CENTRAL or is_host_user(name)) and user != name:
        raise IdentityMismatch(
            f"{name} connects to the broker as {user!r}, but the others believe its messages "
            f"only from the user {name!r}: set AMQP_URL to that user's credentials"
        )


def run_until_signalled(service: Service[Any]) -> None:
    """Stop cleanly on SIGTERM or SIGINT: in-flight messages finish and are acked."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.run()

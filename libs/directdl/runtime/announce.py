"""Every process says who it is and where its health endpoints are: at start, and when asked.

`directdl status` publishes service.discover and collects the service.announced answers
(directdl.bus.discovery). The event is bound on each service's own events queue, so every
service hears it; replicas sharing that queue take turns, and a standby sync-scheduler
(single active consumer) does not answer until it becomes the active one.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from directdl.bus.dispatch import Handlers, On, WiringError
from directdl.contracts.service import DiscoverServices, ServiceAnnounced
from directdl.runtime.uow import UnitOfWork

if TYPE_CHECKING:
    from collections.abc import Callable

    from directdl.runtime.service import Service

# The background work that announces a service as it starts.
ANNOUNCE = "service.announce"
# Hosts that mean "every interface": no client can connect to them by that name.
ANY_INTERFACE = ("", "0.0.0.0", "::")  # noqa: S104 (compared with, never bound)


def health_url(host: str, port: int) -> str:
    """Where a health server listening on host:port can be reached from elsewhere."""
    name = socket.gethostname() if host in ANY_INTERFACE else host
    return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"


@dataclass(frozen=True)
class Announcer:
    """One process start: its identity, and where its health server listens (read when
    announcing, as a port of 0 is chosen only once the server is bound)."""

    service: str
    health: Callable[[], str | None]
    host_id: str | None
    instance: str
    started_at: datetime
    version: str

    @classmethod
    def starting(
        cls, service: str, health: Callable[[], str | None], host_id: str | None = None
    ) -> Announcer:
        return cls(
            service, health, host_id, str(uuid.uuid4()), datetime.now(UTC), version("directdl")
        )

    def announcement(self) -> ServiceAnnounced:
        return ServiceAnnounced(
            service=self.service,
            instance=self.instance,
            health_url=self.health(),
            version=self.version,
            started_at=self.started_at,
            host_id=self.host_id,
        )

    def announce(self, service: Service[Any]) -> None:
        """At start; the relay sends it once the consumer has connected."""
        with service.transaction(ANNOUNCE) as uow:
            uow.emit(self.announcement())


def discover_services(
    evt: DiscoverServices, uow: UnitOfWork, announcer: Announcer | None = None
) -> None:
    # Service always injects its announcer; the default spares every in-memory test table,
    # which never hears service.discover, from wiring one.
    if announcer is None:
        raise WiringError("service.discover needs an announcer, which Service provides")
    uow.emit(announcer.announcement())


ANNOUNCE_HANDLERS = Handlers(
    # On the service's own events queue: a shared one would give the question to one process.
    # Answering twice does no harm, so the inbox is skipped.
    events={DiscoverServices: On(discover_services, emits=(ServiceAnnounced,), idempotent=True)},
    background={ANNOUNCE: (ServiceAnnounced,)},
)
"""What every service handles to announce itself; its table includes it."""

"""Thousands of simulated host agents on one asyncio loop: heartbeats, inventories, commands."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pika
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel
from pika.spec import Basic

from directdl.bus.delivery import new_message_id
from directdl.bus.publisher import properties
from directdl.bus.topology import Topology
from directdl.contracts import host as msg
from directdl.contracts.base import Message
from directdl.contracts.senders import host_user
from directdl.runtime.accounts import dev_password

# A tick that runs this much after it was due counts as late: the simulator fell behind.
LATE_SECONDS = 0.5
# Connections being opened at once, whatever the rate.
OPENING_AT_ONCE = 64
# A start that connects no further host for this long has failed.
STALL_SECONDS = 60.0
# Hosts opened between two gc.freeze() calls; see _open_all.
FREEZE_EVERY = 250
CLOSE_TIMEOUT_S = 60.0
POOL_BYTES = 4 << 40
T = TypeVar("T")

OnCommand = Callable[["SimulatedHost", str, bytes], None]
"""on_command(host, routing_key, body), on the simulator's loop; `host.publish` answers."""


@dataclass(frozen=True)
class HostIdentity:
    host_id: str
    zone_id: str = "zone-1"
    cluster_id: str = "cluster-1"


@dataclass
class SimStats:
    """What the simulator did; `late_ticks` and `errors` are failures of the bench itself."""

    connected: int = 0
    beats: int = 0
    inventories: int = 0
    inventory_requests: int = 0
    commands: int = 0
    late_ticks: int = 0
    max_lag_s: float = 0.0
    # Heartbeats due while the host had no channel; returned (unroutable) publishes.
    missed: int = 0
    unroutable: int = 0
    errors: list[str] = field(default_factory=list)


def inventory_digest(
    pools: Sequence[msg.PoolStatus],
    templates: Sequence[msg.StoredTemplate],
    certificates: Sequence[msg.TrustedCertificate],
) -> str:
    """The contract's digest of an inventory where it defines one, else the same recipe:
    SHA-256 of the canonical JSON of the sorted pools, templates and certificates."""
    defined = getattr(msg, "inventory_digest", None)
    if callable(defined):
        return str(defined(pools, templates, certificates))
    canonical = {
        "pools": sorted((p.model_dump(mode="json") for p in pools), key=_canonical),
        "templates": sorted((t.model_dump(mode="json") for t in templates), key=_canonical),
        "certificates": sorted((c.model_dump(mode="json") for c in certificates), key=_canonical),
    }
    return "{SHA-256}" + hashlib.sha256(_canonical(canonical).encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class SimulatedHost:
    """One host: its own broker user, connection and channel. Runs on the simulator's loop."""

    def __init__(self, sim: SimulatedHosts, identity: HostIdentity, templates: int) -> None:
        self.sim = sim
        self.identity = identity
        self.host_id = identity.host_id
        self.user = host_user(identity.host_id)
        self.pools = [
            msg.PoolStatus(pool_id="pool-1", capacity_bytes=POOL_BYTES, free_bytes=POOL_BYTES // 2)
        ]
        self.templates = [_stored(identity.host_id, n) for n in range(templates)]
        self.certificates: list[msg.TrustedCertificate] = []
        self.channel: Channel | None = None
        self.connection: AsyncioConnection | None = None
        self.ready: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] | None = None
        self._beat: Message | None = None
        self._sent_digest: str | None = None

    @property
    def digest(self) -> str:
        return inventory_digest(self.pools, self.templates, self.certificates)

    def publish(self, message: Message) -> None:
        """Publish as this host does, through its relay: its user in `user_id`."""
        self.publish_raw(message.routing_key, message.model_dump_json().encode())

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        if self.channel is None or not self.channel.is_open:
            raise RuntimeError(f"{self.user} has no open channel to publish {routing_key!r}")
        props = properties(new_message_id(), routing_key, app_id=self.user, user_id=self.user)
        self.channel.basic_publish(
            self.sim.topology.exchange, routing_key, body, props, mandatory=True
        )

    def send_inventory(self) -> None:
        """HostInventory, where the contract has it; the digest is what the next beats carry."""
        inventory = getattr(msg, "HostInventory", None)
        digest = self.digest
        self._beat = None  # the next heartbeat carries the new digest
        self._sent_digest = digest
        if inventory is None:
            return
        i = self.identity
        self.publish(
            inventory(
                host_id=i.host_id,
                zone_id=i.zone_id,
                cluster_id=i.cluster_id,
                pools=self.pools,
                templates=self.templates,
                certificates=self.certificates,
                digest=digest,
                sent_at=datetime.now(UTC),
            )
        )
        self.sim.stats.inventories += 1

    def heartbeat(self) -> None:
        if self._sent_digest != self.digest:
            self.send_inventory()  # what an agent does when its inventory changed
        if self._beat is None:
            self._beat = self.heartbeat_message()
        self.publish(self._beat.model_copy(update={"sent_at": datetime.now(UTC)}))
        self.sim.stats.beats += 1

    def heartbeat_message(self) -> Message:
        """The host's heartbeat now, as its agent builds it."""
        i = self.identity
        common: dict[str, Any] = {
            "host_id": i.host_id,
            "zone_id": i.zone_id,
            "cluster_id": i.cluster_id,
            "state": msg.HostState.UP,
            "interval_seconds": self.sim.interval,
            "sent_at": datetime.now(UTC),
        }
        if "inventory_digest" in msg.HostHeartbeat.model_fields:
            common["inventory_digest"] = self._sent_digest or self.digest
        else:  # the contract before inventories: every heartbeat carries what the host holds
            common |= {"pools": self.pools, "templates": self.templates}
            common["certificates"] = self.certificates
        return msg.HostHeartbeat(**common)


def _stored(host_id: str, n: int) -> msg.StoredTemplate:
    template_id = f"sim-template-{n}"
    fake = hashlib.sha256(f"{template_id}".encode()).hexdigest()
    return msg.StoredTemplate(
        template_id=template_id,
        pool_id="pool-1",
        path=f"/pools/{host_id}/{template_id}",
        size=1 << 30,
        digest="{SHA-256}" + fake,
    )


class SimulatedHosts:
    """N host agents, each `host-agent-<id>` on a connection of its own, all on one asyncio
    loop in a background thread. Each beats every `interval` seconds from a random phase,
    sends its inventory at start and when asked (RequestInventory), and hands the messages
    it receives on `command_keys` (e.g. "host.{host_id}.cert.install") to `on_command`.

    `url` gives the broker and vhost; each host connects with its development password.
    """

    def __init__(
        self,
        url: str,
        hosts: Sequence[HostIdentity],
        interval: float,
        *,
        topology: Topology | None = None,
        connect_rate: float = 250.0,
        templates: int = 2,
        on_command: OnCommand | None = None,
        command_keys: Sequence[str] = (),
        password: Callable[[str], str] = dev_password,
        seed: int | None = None,
    ) -> None:
        self.url = url
        self.interval = interval
        self.topology = topology or Topology()
        self.connect_rate = connect_rate
        self.on_command = on_command
        self.command_keys = tuple(command_keys)
        self.password = password
        self.stats = SimStats()
        self.hosts = [SimulatedHost(self, identity, templates) for identity in hosts]
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simhosts", daemon=True)
        self._stopping = False

    def start(self) -> None:
        """Open every host's connection, at most `connect_rate` a second; return once all
        beat, or raise with the first failure, or when none connected for a minute."""
        self._thread.start()
        opened = self.call(self._open_all())
        connected, since = 0, time.monotonic()
        while not opened.done():
            with contextlib.suppress(FutureTimeout):
                opened.result(1.0)
            if self.stats.connected > connected:
                connected, since = self.stats.connected, time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                opened.cancel()
                raise TimeoutError(
                    f"{connected} of {len(self.hosts)} hosts connected, then none for "
                    f"{STALL_SECONDS:g} s"
                )
        opened.result()

    def stop(self) -> None:
        """Close every connection and the loop."""
        if not self._thread.is_alive():
            return
        try:
            self.call(self._close_all()).result(CLOSE_TIMEOUT_S + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> SimulatedHosts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, work: Any) -> Future[Any]:
        """Run a coroutine on the simulator's loop, from any thread."""
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def in_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn()` on the simulator's loop (where hosts may be touched) and return its value."""

        async def run() -> T:
            return fn()

        result: T = self.call(run()).result(30)
        return result

    def command_routing_keys(self, host: SimulatedHost) -> list[str]:
        keys = [key.format(host_id=host.host_id) for key in self.command_keys]
        request = getattr(msg, "RequestInventory", None)
        if request is not None:
            keys.append(request.address(host_id=host.host_id))
        return keys

    async def _open_all(self) -> None:
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        pause = 1.0 / self.connect_rate
        loop = asyncio.get_running_loop()
        waits = []
        for host in self.hosts:
            await gate.acquire()
            host.ready = loop.create_future()
            host.ready.add_done_callback(lambda _f: gate.release())
            host.closed = loop.create_future()
            self._open(host)
            waits.append(host.ready)
            if len(waits) % FREEZE_EVERY == 0:
                # Each host's connection is thousands of long-lived objects; a full
                # collection over all of them stops the loop for a third of a second at
                # 3,000 hosts, and every heartbeat due meanwhile is late. Frozen, they are
                # never scanned again (this process only simulates).
                gc.freeze()
            await asyncio.sleep(pause)
        await asyncio.gather(*waits)
        gc.freeze()

    def _open(self, host: SimulatedHost) -> None:
        parts = urlsplit(self.url)
        params = pika.ConnectionParameters(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5672,
            virtual_host=(parts.path[1:] or "/") if parts.path else "/",
            credentials=pika.PlainCredentials(host.user, self.password(host.user)),
            heartbeat=60,
            connection_attempts=1,
            client_properties={"connection_name": host.user},
        )
        host.connection = AsyncioConnection(
            params,
            on_open_callback=lambda conn: conn.channel(
                on_open_callback=lambda ch: self._on_channel(host, ch)
            ),
            on_open_error_callback=lambda _conn, err: self._on_closed(host, err),
            on_close_callback=lambda _conn, reason: self._on_closed(host, reason),
            custom_ioloop=self._loop,
        )

    def _on_channel(self, host: SimulatedHost, channel: Channel) -> None:
        host.channel = channel
        channel.add_on_close_callback(lambda _ch, reason: self._channel_closed(host, reason))
        channel.add_on_return_callback(self._on_return)
        keys = self.command_routing_keys(host)
        if not keys:
            self._begin(host)
            return
        # Named as the agent's own commands queue, which the host's permissions allow;
        # exclusive, so that nothing outlives the simulation.
        queue = f"{self.topology.queue_prefix}{host.user}.commands"

        def bind(remaining: list[str]) -> None:
            if not remaining:
                channel.basic_consume(queue, lambda *a: self._on_message(host, *a))
                self._begin(host)
                return
            channel.queue_bind(
                queue,
                self.topology.exchange,
                remaining[0],
                callback=lambda _frame: bind(remaining[1:]),
            )

        channel.queue_declare(
            queue, exclusive=True, auto_delete=True, callback=lambda _frame: bind(keys)
        )

    def _begin(self, host: SimulatedHost) -> None:
        self.stats.connected += 1
        host.send_inventory()
        due = self._loop.time() + self._random.uniform(0, self.interval)
        self._loop.call_at(due, self._tick, host, due)
        if host.ready is not None and not host.ready.done():
            host.ready.set_result(None)

    def _tick(self, host: SimulatedHost, due: float) -> None:
        if self._stopping:
            return
        lag = self._loop.time() - due
        self.stats.max_lag_s = max(self.stats.max_lag_s, lag)
        if lag > LATE_SECONDS:
            self.stats.late_ticks += 1
        if host.channel is not None and host.channel.is_open:
            host.heartbeat()
        else:
            self.stats.missed += 1
        # Fixed-rate: a simulator that falls behind shows it in the lag, never skips beats.
        self._loop.call_at(due + self.interval, self._tick, host, due + self.interval)

    def _on_message(
        self,
        host: SimulatedHost,
        channel: Channel,
        method: Basic.Deliver,
        _props: pika.BasicProperties,
        body: bytes,
    ) -> None:
        request = getattr(msg, "RequestInventory", None)
        key = method.routing_key
        try:
            if request is not None and key == request.address(host_id=host.host_id):
                self.stats.inventory_requests += 1
                host.send_inventory()
            elif self.on_command is not None:
                self.stats.commands += 1
                self.on_command(host, key, body)
            else:
                self.stats.errors.append(f"{host.user}: nothing handles {key!r}")
        except Exception as err:  # recorded, and reported as the bench's failure
            self.stats.errors.append(f"{host.user} on {key!r}: {type(err).__name__}: {err}")
        channel.basic_ack(method.delivery_tag)

    def _on_return(
        self, _ch: Channel, method: Basic.Return, _props: pika.BasicProperties, _body: bytes
    ) -> None:
        self.stats.unroutable += 1
        if self.stats.unroutable == 1:
            self.stats.errors.append(f"unroutable: nothing bound to {method.routing_key!r}")

    def _channel_closed(self, host: SimulatedHost, reason: BaseException) -> None:
        host.channel = None
        if not self._stopping:
            self._failed(host, f"channel closed: {reason!r}")

    def _on_closed(self, host: SimulatedHost, reason: BaseException) -> None:
        host.channel = None
        if host.closed is not None and not host.closed.done():
            host.closed.set_result(None)
        if not self._stopping:
            self._failed(host, f"connection closed: {reason!r}")

    def _failed(self, host: SimulatedHost, error: str) -> None:
        self.stats.errors.append(f"{host.user}: {error}")
        if host.ready is not None and not host.ready.done():
            host.ready.set_exception(RuntimeError(f"{host.user}: {error}"))

    async def _close_all(self) -> None:
        self._stopping = True
        waits = []
        for host in self.hosts:
            connection = host.connection
            if connection is None or host.closed is None:
                continue
            if connection.is_open:
                connection.close()
            elif not connection.is_closing:
                continue
            waits.append(host.closed)
        if waits:
            await asyncio.wait(waits, timeout=CLOSE_TIMEOUT_S)

"""A service's dispatch table: each message's handler, and everything that handler may publish."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from directdl.bus.processing import BatchRoute, Route
from directdl.contracts.base import Message

Messages = tuple[type[Message], ...]


@dataclass(frozen=True)
class On:
    """What a service does with one message: `handler(message, uow, **dependencies)`, and
    every message it may publish; publishing anything else fails the delivery."""

    handler: Callable[..., Any]
    emits: Messages = ()
    # A handler whose effect is the same however often it runs (a heartbeat's upsert) skips
    # the inbox: thousands of hosts beating every few seconds would fill it for nothing.
    idempotent: bool = False


@dataclass(frozen=True)
class OnBatch:
    """What a service does with many deliveries of one message at once, in one transaction:
    `handler(messages: list[Model], uow, **dependencies)`. Batched messages skip the inbox,
    like `On(idempotent=True)`, so the handler must be an idempotent upsert; they are events,
    never answered."""

    handler: Callable[..., Any]
    emits: Messages = ()


@dataclass(frozen=True)
class Every:
    """Work a timer starts: `handler(uow, **dependencies)` every `interval()` seconds, where
    `interval` names the dependency that says how long, read before each wait."""

    interval: str
    handler: Callable[..., Any]
    emits: Messages = ()
    run_at_start: bool = True


Table = Mapping[type[Message], On]
BatchTable = Mapping[type[Message], OnBatch]
# What one of a service's own queues holds: messages one by one, or in batches.
QueueTable = Mapping[type[Message], On | OnBatch]
# The purposes of the queues taken one delivery at a time.
SINGLE = ("commands", "events")


@dataclass(frozen=True)
class Handlers:
    """One service's table: the source of its queue bindings, of who consumes and produces
    what in the message reference, and of its broker permissions."""

    commands: Table = field(default_factory=dict)
    events: Table = field(default_factory=dict)
    # Queues every service shares, taking turns, by name (the settings commands).
    shared: Mapping[str, Table] = field(default_factory=dict)
    timers: Mapping[str, Every] = field(default_factory=dict)
    # Work started neither by a message nor a timer (a download finishing, the start-up
    # announcement), by the name it opens its transaction with: what it may publish.
    background: Mapping[str, Messages] = field(default_factory=dict)
    # Queues of the service's own, `<service>.<purpose>` by purpose, whose messages are
    # handed to their handlers in batches (heartbeats from thousands of hosts).
    batched: Mapping[str, BatchTable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        taken = set(SINGLE) & set(self.batched)
        if taken:
            raise WiringError(f"a batched queue cannot be named {', '.join(sorted(taken))}")

    def __or__(self, other: Handlers) -> Handlers:
        _no_overlap(self.commands, other.commands)
        _no_overlap(self.events, other.events)
        _no_overlap(self.timers, other.timers)
        _no_overlap(self.background, other.background)
        shared: dict[str, Table] = {}
        for name in sorted({*self.shared, *other.shared}):
            mine, theirs = self.shared.get(name, {}), other.shared.get(name, {})
            _no_overlap(mine, theirs)
            shared[name] = {**mine, **theirs}
        batched: dict[str, BatchTable] = {}
        for name in sorted({*self.batched, *other.batched}):
            mine_b, theirs_b = self.batched.get(name, {}), other.batched.get(name, {})
            _no_overlap(mine_b, theirs_b)
            batched[name] = {**mine_b, **theirs_b}
        return Handlers(
            {**self.commands, **other.commands},
            {**self.events, **other.events},
            shared,
            {**self.timers, **other.timers},
            {**self.background, **other.background},
            batched,
        )

    @property
    def single(self) -> dict[str, Table]:
        """The own queues taken one delivery at a time, by purpose; an empty one is not
        declared."""
        return {
            purpose: table
            for purpose, table in (("commands", self.commands), ("events", self.events))
            if table
        }

    @property
    def queues(self) -> dict[str, QueueTable]:
        """All the service's own queues by purpose, batched ones included."""
        return {**self.single, **{p: t for p, t in self.batched.items() if t}}

    def _tables(self) -> list[QueueTable]:
        """Every table of messages this service consumes: its own queues and the shared."""
        return [*self.queues.values(), *self.shared.values()]

    def consumes(self) -> set[type[Message]]:
        return {model for table in self._tables() for model in table}

    def publishes(self) -> set[type[Message]]:
        return {model for emits in self.emitters().values() for model in emits}

    def emitters(self) -> dict[str, Messages]:
        """Everything that may publish, by name: each handled routing key, timer and
        background work."""
        handled = {
            model.routing_key: on.emits for table in self._tables() for model, on in table.items()
        }
        timed = {name: every.emits for name, every in self.timers.items()}
        return handled | timed | dict(self.background)

    def emits_of(self, command: type[Message]) -> Messages:
        for table in self._tables():
            if command in table:
                return table[command].emits
        return ()

    def routing_keys(self, address: Mapping[str, str]) -> dict[str, set[str]]:
        """The keys each queue binds, by purpose or shared queue name, addressed to one
        instance: what the broker lists once the service runs."""
        tables = {**self.queues, **self.shared}
        return {name: {address_of(m, address) for m in table} for name, table in tables.items()}

    def bind(self, dependencies: Mapping[str, Any], address: Mapping[str, str]) -> Bound:
        """The table with every dependency injected by parameter name, and routing keys
        filled in with `address` (a host agent's `host_id`, a settings owner)."""
        return Bound(
            queues={
                purpose: _routes(table, dependencies, address)
                for purpose, table in self.single.items()
            },
            shared={
                name: _routes(table, dependencies, address) for name, table in self.shared.items()
            },
            timers={
                name: BoundTimer(
                    name,
                    _interval(name, every.interval, dependencies),
                    inject(every.handler, dependencies, leading=1),
                    frozenset(every.emits),
                    every.run_at_start,
                )
                for name, every in self.timers.items()
            },
            background={name: frozenset(emits) for name, emits in self.background.items()},
            batched={
                purpose: _batch_routes(table, dependencies, address)
                for purpose, table in self.batched.items()
                if table
            },
        )


@dataclass(frozen=True)
class BoundTimer:
    name: str
    interval: Callable[[], float]
    run: Callable[[Any], None]
    emits: frozenset[type[Message]]
    run_at_start: bool


@dataclass(frozen=True)
class Bound:
    """A table ready to run: routes by routing key, timers with their dependencies."""

    queues: dict[str, dict[str, Route]]
    shared: dict[str, dict[str, Route]]
    timers: dict[str, BoundTimer]
    background: dict[str, frozenset[type[Message]]]
    batched: dict[str, dict[str, BatchRoute]] = field(default_factory=dict)

    @property
    def routes(self) -> dict[str, Route]:
        tables = [*self.queues.values(), *self.shared.values()]
        return {key: route for table in tables for key, route in table.items()}

    @property
    def batch_routes(self) -> dict[str, BatchRoute]:
        return {key: route for table in self.batched.values() for key, route in table.items()}


class WiringError(TypeError):
    """A handler needs a dependency that `bootstrap()` does not provide."""


def inject(
    handler: Callable[..., Any], dependencies: Mapping[str, Any], leading: int = 2
) -> Callable[..., Any]:
    """`handler` with each parameter after the `leading` ones (the message and the unit of
    work) taken from `dependencies` by its name, as cosmicpython's bootstrap does.

    Checked here, at wiring, so a missing dependency stops the service from starting rather
    than failing its first message."""
    parameters = list(inspect.signature(handler).parameters.values())[leading:]
    missing = [p.name for p in parameters if p.name not in dependencies and p.default is p.empty]
    if missing:
        raise WiringError(
            f"{handler.__module__}.{handler.__qualname__} needs {', '.join(missing)}, "
            "which bootstrap() does not provide"
        )
    given = {p.name: dependencies[p.name] for p in parameters if p.name in dependencies}
    return partial(handler, **given) if given else handler


def address_of(model: type[Message], address: Mapping[str, str]) -> str:
    return model.routing_key.format_map(address) if "{" in model.routing_key else model.routing_key


def _routes(
    table: Table, dependencies: Mapping[str, Any], address: Mapping[str, str]
) -> dict[str, Route]:
    return {
        address_of(model, address): Route(
            model, inject(on.handler, dependencies), on.idempotent, frozenset(on.emits)
        )
        for model, on in table.items()
    }


def _batch_routes(
    table: BatchTable, dependencies: Mapping[str, Any], address: Mapping[str, str]
) -> dict[str, BatchRoute]:
    return {
        address_of(model, address): BatchRoute(
            model, inject(on.handler, dependencies), frozenset(on.emits)
        )
        for model, on in table.items()
    }


def _interval(timer: str, name: str, dependencies: Mapping[str, Any]) -> Callable[[], float]:
    if name not in dependencies:
        raise WiringError(f"timer {timer} runs every {name}, which bootstrap() does not provide")
    interval: Callable[[], float] = dependencies[name]
    return interval


def _no_overlap(left: Iterable[Any], right: Iterable[Any]) -> None:
    both = set(left) & set(right)
    if both:
        raise WiringError(f"handled twice: {', '.join(sorted(map(_name, both)))}")


def _name(item: Any) -> str:
    return str(getattr(item, "routing_key", item))

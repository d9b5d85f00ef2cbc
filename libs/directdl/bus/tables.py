"""Every service's dispatch table, found through the `directdl.services` entry points, and
the roles they add up to."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from directdl.bus.dispatch import Handlers
from directdl.contracts.base import Message
from directdl.contracts.roles import Roles
from directdl.contracts.senders import Operators

GROUP = "directdl.services"
# The table every host agent runs; its instances are named `host-agent-<host id>`.
AGENT = "host-agent"
# Operators' tools (the CLI, scripts) send commands; they consume only replies and watch.
OPERATORS = "operators"


def service_tables() -> dict[str, Handlers]:
    """Each installed service's table by its name. The shared code cannot import a service;
    each one names its table in pyproject.toml, as plugins do."""
    tables: dict[str, Handlers] = {}
    for point in entry_points(group=GROUP):
        table = point.load()
        if not isinstance(table, Handlers):
            raise TypeError(f"entry point {point.name} = {point.value} is not a Handlers table")
        tables[point.name] = table
    if not tables:
        raise LookupError(f"no {GROUP} entry points: is the project installed (make install)?")
    return dict(sorted(tables.items()))


def roles_of(tables: Mapping[str, Handlers]) -> Roles:
    consumers: dict[type[Message], set[str]] = {}
    producers: dict[type[Message], set[str]] = {}
    emits: dict[type[Message], set[type[Message]]] = {}
    for service, table in tables.items():
        for model in table.consumes():
            consumers.setdefault(model, set()).add(service)
            emits.setdefault(model, set()).update(table.emits_of(model))
        for model in table.publishes():
            producers.setdefault(model, set()).add(service)
    for model in consumers:
        if isinstance(model.sent_by, Operators):
            producers.setdefault(model, set()).add(OPERATORS)
    return Roles(
        consumers={m: tuple(sorted(s)) for m, s in consumers.items()},
        producers={m: tuple(sorted(s)) for m, s in producers.items()},
        emits={m: tuple(sorted(e, key=lambda x: x.routing_key)) for m, e in emits.items() if e},
    )


def roles() -> Roles:
    """The roles of the installed services."""
    return roles_of(service_tables())

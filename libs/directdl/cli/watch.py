"""`directdl status` (every service's readiness, every host's heartbeat) and `directdl events`."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import requests
import typer
from pika.exceptions import AMQPError
from rich.text import Text

from directdl.bus.client import BusClient
from directdl.bus.connection import describe_error
from directdl.bus.discovery import discover
from directdl.cli.output import (
    Exit,
    Format,
    err,
    out,
    print_error,
    print_json,
    print_rows,
    shape,
)
from directdl.cli.session import NoReply, Session
from directdl.contracts.host import ListHosts

# The health endpoints `make run` and compose expose: what status falls back on when the
# services cannot be asked where theirs are. DIRECTDL_HEALTH_URLS ("name=url,name=url")
# overrides both.
DEFAULT_HEALTH = (
    "registration=http://127.0.0.1:8081,certificate=http://127.0.0.1:8082,"
    "sync-scheduler=http://127.0.0.1:8083,api=http://127.0.0.1:8084,"
    "host-agent-host-1=http://127.0.0.1:8090,host-agent-host-2=http://127.0.0.1:8091"
)
SERVICE_COLUMNS = ("service", "ready", "checks")
HOST_COLUMNS = ("host_id", "zone_id", "state", "last_seen")


def status(
    ctx: typer.Context,
    health: Annotated[
        str | None,
        typer.Option(
            envvar="DIRECTDL_HEALTH_URLS",
            help="name=url,... of /readyz bases; default: those the services announce.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Every service's readiness and every host's last heartbeat. Exits 1 if any is not
    ready; the readiness is shown even when the broker is down (exit 4).

    Example: directdl status
    """
    session: Session = ctx.obj
    targets, source = health_targets(session, health)
    services = [_readiness(name, base) for name, base in targets]
    try:
        reply = session.fetch(ListHosts())
    except NoReply as failure:
        _without_hosts(services, source, failure.code, failure.message)
        raise typer.Exit(failure.exit) from None
    if not reply.ok:
        assert reply.error is not None
        _without_hosts(services, source, reply.error.code, reply.error.message)
        raise typer.Exit(Exit.ERROR_REPLY)
    hosts = [{k: h[k] for k in HOST_COLUMNS} for h in (reply.result or {})["items"]]
    if as_json:
        print_json({"services": services, "hosts": hosts, "health_from": source})
    else:
        print_rows(services, SERVICE_COLUMNS, caption=f"health endpoints: {source}")
        print_rows(hosts, HOST_COLUMNS)
    if not all(s["ready"] for s in services):
        raise typer.Exit(Exit.ERROR_REPLY)


def _without_hosts(services: list[dict[str, Any]], source: str, code: str, message: str) -> None:
    """What could be fetched, then why the hosts could not: one JSON error with the
    readiness in its details, or the table, then the error on stderr."""
    if shape().format is not Format.JSON:
        print_rows(services, SERVICE_COLUMNS, caption=f"health endpoints: {source}")
    print_error(code, message, {"services": services, "health_from": source})


def health_targets(session: Session, override: str | None) -> tuple[list[tuple[str, str]], str]:
    """Where each service's /readyz is, and where that was learnt: the override, what the
    services announce on the bus, or (saying why) the defaults."""
    if override:
        return _pairs(override), "DIRECTDL_HEALTH_URLS"
    try:
        announced = discover(session.amqp_url, session.topology)
    except (AMQPError, OSError) as error:
        return _pairs(DEFAULT_HEALTH), f"defaults, as discovery failed: {describe_error(error)}"
    found = [a for a in announced if a.health_url]
    if not found:
        return _pairs(DEFAULT_HEALTH), "defaults, as no service announced a health URL"
    names = [a.service for a in found]
    # Replicas (sync-scheduler) announce the same service: their instances tell them apart.
    return [
        (a.service if names.count(a.service) == 1 else f"{a.service}/{a.instance}", a.health_url)
        for a in sorted(found, key=lambda a: (a.service, a.instance))
        if a.health_url
    ], "announced"


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = [pair.split("=", 1) for pair in text.split(",") if "=" in pair]
    return [(name.strip(), url.strip()) for name, url in pairs]


def event_line(routing_key: str, payload: Any) -> Text:
    """One published message for `directdl events`: its key in bold, then its body."""
    return Text.assemble((routing_key, "bold"), " ", json.dumps(payload)[:300])


def _readiness(name: str, base: str) -> dict[str, Any]:
    try:
        body = requests.get(f"{base.rstrip('/')}/readyz", timeout=3).json()
    except (requests.RequestException, ValueError) as err:
        return {"service": name, "ready": False, "checks": f"unreachable: {describe_error(err)}"}
    failing = {k: v.get("error") for k, v in body["checks"].items() if not v["ok"]}
    checks = ", ".join(f"{k}: {v}" for k, v in failing.items()) or ", ".join(body["checks"])
    return {"service": name, "ready": body["ready"], "checks": checks}


def events(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="Routing-key pattern: * one word, # any.")] = "#",
    count: Annotated[int, typer.Option(help="Stop after this many; 0 never.", min=0)] = 0,
    seconds: Annotated[float, typer.Option(help="Stop after this long; 0 never.", min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Tail the bus: print every message whose routing key matches, as it is published.

    Example: directdl events 'template.#' --json
    """
    session: Session = ctx.obj
    seen = 0
    deadline = time.monotonic() + seconds if seconds else None

    def show(routing_key: str, body: bytes) -> None:
        nonlocal seen
        seen += 1
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        if as_json:
            print(json.dumps({"routing_key": routing_key, "body": payload}), flush=True)
        else:
            out.print(event_line(routing_key, payload))

    try:
        with BusClient(session.amqp_url, session.topology) as client:
            client.watch((pattern,), show)
            err.print(Text(f"watching {pattern!r} on exchange {session.topology.exchange!r}"))
            while not (count and seen >= count) and not (deadline and time.monotonic() > deadline):
                client.pump(0.2)
    except (AMQPError, OSError) as error:
        print_error("UNREACHABLE", describe_error(error))
        raise typer.Exit(Exit.UNREACHABLE) from error
    except KeyboardInterrupt:
        return

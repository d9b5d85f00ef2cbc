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
from directdl.cli.output import Exit, err, out, print_error, print_json, print_rows
from directdl.cli.session import Session
from directdl.contracts.host import ListHosts

# The health endpoints `make run` and compose expose; DIRECTDL_HEALTH_URLS overrides them as
# "name=url,name=url".
DEFAULT_HEALTH = (
    "registration=http://127.0.0.1:8081,certificate=http://127.0.0.1:8082,"
    "sync-scheduler=http://127.0.0.1:8083,host-agent-host-1=http://127.0.0.1:8090,"
    "host-agent-host-2=http://127.0.0.1:8091"
)


def status(
    ctx: typer.Context,
    health: Annotated[
        str, typer.Option(envvar="DIRECTDL_HEALTH_URLS", help="name=url,... of /readyz bases.")
    ] = DEFAULT_HEALTH,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every service's readiness and every host's last heartbeat. Exits 1 if any is not ready.

    Example: directdl status
    """
    session: Session = ctx.obj
    services = [_readiness(*pair.split("=", 1)) for pair in health.split(",") if "=" in pair]
    hosts = session.call(ListHosts(), as_json=False)["items"]
    if as_json:
        print_json({"services": services, "hosts": hosts})
    else:
        print_rows(services, ("service", "ready", "checks"))
        print_rows(
            [{k: h[k] for k in ("host_id", "zone_id", "state", "last_seen")} for h in hosts],
            ("host_id", "zone_id", "state", "last_seen"),
        )
    if not all(s["ready"] for s in services):
        raise typer.Exit(Exit.ERROR_REPLY)


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

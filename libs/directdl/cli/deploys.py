"""`directdl template deploy` with a live progress bar, `directdl deploy list|show|follow`,
and `directdl hosts`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from directdl.bus.client import DIRECT_REPLY_TO, BusClient, ReplyTimeout
from directdl.cli import pools, resolve
from directdl.cli.output import (
    Exit,
    err,
    human_size,
    print_error,
    print_json,
    print_record,
    print_reply,
    print_rows,
)
from directdl.cli.session import Conversation, Session
from directdl.contracts import deploy as msg
from directdl.contracts.download import DownloadProgress
from directdl.contracts.errors import ErrorCode
from directdl.contracts.host import HostState, ListHosts
from directdl.contracts.reply import Reply

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
# What following a deploy watches; each event names its deploy_id, by which it is kept.
ENDS = (msg.TemplateDeployed.routing_key, msg.TemplateDeployFailed.routing_key)
FOLLOWED = (DownloadProgress.routing_key, *ENDS)
# While no progress arrives, deploy.get is asked this often where the deploy is.
LOOK_EVERY_S = 2.0
FIRST_LOOKS_S = 0.3  # until deploy.get has described the deploy: a queued line at once
LOOK_TIMEOUT_S = 5.0
INTERRUPTED = 130  # as a shell reports SIGINT


def deploy(
    ctx: typer.Context,
    template: Annotated[
        str, typer.Option(help="Template name in the zone, id, or a unique prefix of the id.")
    ],
    zone: Annotated[str, typer.Option(help="Zone id.")],
    host: Annotated[str | None, typer.Option(help="Deploy on this host only.")] = None,
    pool: Annotated[str | None, typer.Option(help="Primary storage pool id.")] = None,
    wait: Annotated[
        bool, typer.Option(help="Wait for the outcome, showing progress; else print the deploy id.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcome.")] = 3600.0,
    as_json: Json = False,
) -> None:
    """Download a template straight into a host's primary storage, showing progress.

    The deploy's id is printed at once. Ctrl-C stops waiting, not the deploy: `directdl deploy
    follow ID` attaches to it again.

    Example: directdl template deploy --template 6f1c... --zone zone-1
    """
    session: Session = ctx.obj
    template = resolve.template(session, template, zone)
    deploy_id = str(uuid.uuid4())
    command = msg.DeployTemplate(
        template_id=template, zone_id=zone, host_id=host, pool_id=pool, deploy_id=deploy_id
    )
    if not wait:
        message_id = session.send(command)
        if as_json:
            print(json.dumps({"deploy_id": deploy_id, "message_id": message_id}))
        else:
            print(deploy_id)
        return
    if not as_json:
        err.print(Text(f"deploy {deploy_id}"))
    with progress_bars(disable=as_json) as bars:
        tracker = Tracker(deploy_id, bars, say=None if as_json else _say)
        try:
            with session.watching((FOLLOWED, tracker.record)) as bus:
                reply = _run(bus.client, command, tracker, timeout)
        except KeyboardInterrupt:
            _goes_on(deploy_id)
    result = _result(reply, as_json)
    if not as_json:
        shown = {k: v for k, v in result.items() if k != "attempts"}
        shown["attempts"] = ", ".join(f"{a['host_id']}:{a['state']}" for a in result["attempts"])
        print_record(shown, title="deployed")


def _run(client: BusClient, command: msg.DeployTemplate, tracker: Tracker, timeout: float) -> Reply:
    """Send the deploy, then wait for its reply, asking deploy.get meanwhile where it runs
    while no progress arrives (it waits for a free worker, or moved on to another host)."""
    correlation_id = str(uuid.uuid4())
    body = command.model_dump_json(exclude_none=True).encode()
    client.publish(
        command.routing_key, body, correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO
    )
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReplyTimeout(f"no reply to {command.routing_key} within {timeout:g} s")
        try:
            wait = min(remaining, tracker.look_every())
            return client.wait_reply(correlation_id, wait, "template.deploy")
        except ReplyTimeout:
            pass
        if tracker.stale():
            _look(client, tracker)


def _look(client: BusClient, tracker: Tracker) -> dict[str, Any] | None:
    """What deploy.get says of the deploy now, shown by `tracker`; None when it cannot say
    (not recorded yet, or no answer in time)."""
    tracker.looked()
    try:
        reply = client.call(msg.GetDeploy(deploy_id=tracker.deploy_id), timeout=LOOK_TIMEOUT_S)
    except ReplyTimeout:
        return None
    if not reply.ok or reply.result is None:
        return None
    tracker.seen(reply.result)
    return reply.result


def _goes_on(deploy_id: str) -> NoReturn:
    err.print(
        Text(f"the deploy goes on; follow it with: directdl deploy follow {deploy_id}"),
    )
    raise typer.Exit(INTERRUPTED)


def _say(line: str) -> None:
    err.print(Text(line))


def _result(reply: Reply, as_json: bool) -> dict[str, Any]:
    """The result of a success; an error reply is printed and exits 1."""
    if as_json:
        print_reply(reply.model_dump(mode="json", exclude_none=True))
    if not reply.ok:
        assert reply.error is not None
        if not as_json:
            print_error(reply.error.code, reply.error.message, reply.error.details)
        raise typer.Exit(Exit.ERROR_REPLY)
    return reply.result or {}


def queued_line(host_id: str) -> str:
    return f"queued on {host_id} (waiting for a free download worker)"


class Tracker:
    """What is known of one deploy while the CLI follows it: a bar for each attempt's
    download, a "queued on HOST" line for an attempt its host has not started, and the
    deploy's end. Fed by the events watched (progress, deployed, failed) for this deploy id
    only, and by what deploy.get says."""

    def __init__(
        self, deploy_id: str, bars: Progress, say: Callable[[str], None] | None = None
    ) -> None:
        self.deploy_id = deploy_id
        self.bars = bars
        # Where the bars do not show (not a terminal), a queued line is printed once instead.
        self.say = say if say is not None and not bars.console.is_terminal else None
        self.tasks: dict[str, TaskID] = {}
        self.queued: set[str] = set()
        self.ended: dict[str, Any] | None = None
        self.ended_by: str | None = None
        self._heard = time.monotonic()
        self._looked: float | None = None
        self.viewed = False  # deploy.get has described it

    def record(self, routing_key: str, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            return
        if not isinstance(event, dict) or event.get("deploy_id") != self.deploy_id:
            return
        if routing_key == DownloadProgress.routing_key:
            self._progress(event)
        elif routing_key in ENDS:
            self.ended, self.ended_by = event, routing_key

    def _progress(self, event: dict[str, Any]) -> None:
        self._heard = time.monotonic()
        job = str(event.get("job_id"))
        total = event.get("total")
        if job not in self.tasks:
            self.tasks[job] = self.bars.add_task(str(event.get("host_id")), total=total)
        elif job in self.queued:
            self.bars.update(self.tasks[job], description=str(event.get("host_id")))
        self.queued.discard(job)
        self.bars.update(self.tasks[job], completed=event.get("bytes_done", 0), total=total)

    def seen(self, view: dict[str, Any]) -> None:
        """What deploy.get says: the running attempt queued on its host, or its bar so far."""
        self.viewed = True
        running = next((a for a in view.get("attempts", []) if a["state"] == "RUNNING"), None)
        if running is None or running["job_id"] in self.tasks:
            return
        job, host = running["job_id"], str(running["host_id"])
        if view.get("queued"):
            self.queued.add(job)
            self.tasks[job] = self.bars.add_task(queued_line(host), total=None)
            if self.say is not None:
                self.say(queued_line(host))
        else:
            total = running.get("total")
            self.tasks[job] = self.bars.add_task(
                host, total=total, completed=running.get("bytes_done") or 0
            )

    def looked(self) -> None:
        self._looked = time.monotonic()

    def stale(self) -> bool:
        """Whether to ask deploy.get: not yet, or neither progress nor an answer for a while."""
        if self.ended is not None:
            return False
        if self._looked is None:
            return True
        return time.monotonic() - max(self._heard, self._looked) >= self.look_every()

    def look_every(self) -> float:
        """Soon while registration may not have recorded the deploy yet, then less often."""
        return LOOK_EVERY_S if self.viewed else FIRST_LOOKS_S

    def done(self) -> bool:
        return self.ended is not None


def progress_bars(disable: bool = False) -> Progress:
    """One bar a download, on stderr, described by its host id."""
    return Progress(
        # The description is a host id: data, so neither markup nor emoji codes.
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
        transient=True,
    )


def hosts(
    ctx: typer.Context,
    zone: Annotated[str | None, typer.Option(help="Only this zone.")] = None,
    state: Annotated[
        HostState | None, typer.Option(case_sensitive=False, help="Only hosts Up, or Down.")
    ] = None,
    copies: Annotated[
        bool,
        typer.Option(
            "--templates", help="Also each template copy in each pool: size, last use, digests."
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """List the hosts known from their heartbeats, and with --templates what their pools hold.

    Example: directdl hosts --zone zone-1 --state Up --templates
    """
    session: Session = ctx.obj
    result = session.call(ListHosts(zone_id=zone, state=state), as_json)
    if as_json:
        return
    rows = [
        {
            "host": h["host_id"],
            "zone": h["zone_id"],
            "state": h["state"],
            "last_seen": h["last_seen"],
            "free": _gib(sum(p["free_bytes"] for p in h["pools"])),
            "templates": len(h["templates"]),
        }
        for h in result["items"]
    ]
    print_rows(rows, ("host", "zone", "state", "last_seen", "free", "templates"))
    if copies:
        pools.print_copies(result["items"])


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


app = typer.Typer(
    help="Deploy history: list deploys, show one, follow a running one.", no_args_is_help=True
)
DeployRef = Annotated[
    str, typer.Argument(metavar="DEPLOY", help="The deploy's id, or a unique prefix of it.")
]
LIST_COLUMNS = (
    "deploy_id",
    "template",
    "zone",
    "state",
    "host",
    "bytes",
    "rate",
    "duration",
    "created",
)


@app.command("list", epilog="Example: directdl deploy list --zone zone-1 --state FAILED")
def list_(
    ctx: typer.Context,
    template: Annotated[
        str | None, typer.Option(help="Template name, id, or a unique prefix of the id.")
    ] = None,
    zone: Annotated[str | None, typer.Option(help="Zone id.")] = None,
    host: Annotated[str | None, typer.Option(help="Deploys that tried this host.")] = None,
    state: Annotated[
        msg.AttemptState | None,
        typer.Option(case_sensitive=False, help="RUNNING, SUCCEEDED or FAILED."),
    ] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Json = False,
) -> None:
    """List deploys, newest first."""
    session: Session = ctx.obj
    if template is not None:
        template = resolve.template(session, template, zone)
    command = msg.ListDeploys(
        template_id=template,
        zone_id=zone,
        host_id=host,
        state=state,
        page=page,
        page_size=page_size,
    )
    result = session.call(command, as_json)
    if not as_json:
        rows = [list_row(item) for item in result["items"]]
        caption = f"{len(rows)} of {result['total']}, page {result['page']}"
        print_rows(rows, LIST_COLUMNS, caption=caption)


@app.command(epilog="Example: directdl deploy show 0b7e... --follow")
def show(
    ctx: typer.Context,
    deploy: DeployRef,
    follow_it: Annotated[
        bool, typer.Option("--follow", help="Then follow it, with a progress bar, until it ends.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="With --follow, seconds to follow.")] = 3600.0,
    as_json: Json = False,
) -> None:
    """Show one deploy: state, attempts, bytes, rate, duration, and how it ended."""
    if follow_it:
        follow(ctx, deploy, timeout, as_json)
        return
    session: Session = ctx.obj
    deploy_id = resolve.deploy(session, deploy)
    view = session.call(msg.GetDeploy(deploy_id=deploy_id), as_json)
    if not as_json:
        print_deploy(view)


@app.command(epilog="Example: directdl deploy follow 0b7e...")
def follow(
    ctx: typer.Context,
    deploy: DeployRef,
    timeout: Annotated[float, typer.Option(help="Seconds to follow.")] = 3600.0,
    as_json: Json = False,
) -> None:
    """Attach to a deploy: its state now, a progress bar while it downloads, and how it
    ended. Exits 1 when it failed, 3 when it has not ended in time; Ctrl-C leaves it going.
    """
    session: Session = ctx.obj
    deploy_id = resolve.deploy(session, deploy)
    deadline = time.monotonic() + timeout
    with progress_bars(disable=as_json) as bars:
        tracker = Tracker(deploy_id, bars, say=None if as_json else _say)
        try:
            # Bound before deploy.get: no event of the deploy falls between the two.
            with session.watching((FOLLOWED, tracker.record)) as bus:
                tracker.looked()
                view = bus.call(
                    msg.GetDeploy(deploy_id=deploy_id), as_json, timeout=session.timeout, echo=False
                )
                if view["state"] == msg.AttemptState.RUNNING:
                    if not as_json and not view["queued"]:  # else the tracker says where
                        _say(f"deploy {deploy_id} is running on {view.get('host_id')}")
                    tracker.seen(view)
                    view = _until_ended(bus, tracker, deadline, session.timeout) or view
        except KeyboardInterrupt:
            err.print(
                Text(f"stopped following; the deploy goes on: directdl deploy show {deploy_id}")
            )
            raise typer.Exit(INTERRUPTED) from None
    if as_json:
        print_json({"ok": True, "result": view})
    else:
        print_deploy(view)
    if view["state"] == msg.AttemptState.RUNNING:
        print_error(ErrorCode.TIMEOUT, f"deploy {deploy_id} has not ended within {timeout:g} s")
        raise typer.Exit(Exit.NO_REPLY)
    if view["state"] == msg.AttemptState.FAILED:
        raise typer.Exit(Exit.ERROR_REPLY)


def _until_ended(
    bus: Conversation, tracker: Tracker, deadline: float, timeout: float
) -> dict[str, Any] | None:
    """Follow until the deploy's end event, asking deploy.get again while no progress comes;
    then what deploy.get says of it. None when it had not ended by `deadline`."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _look(bus.client, tracker)
        if bus.wait(tracker.done, min(remaining, LOOK_EVERY_S)):
            break
        if tracker.stale():
            view = _look(bus.client, tracker)
            if view is not None and view["state"] != msg.AttemptState.RUNNING:
                return view
    return bus.call(msg.GetDeploy(deploy_id=tracker.deploy_id), False, timeout=timeout, echo=False)


def list_row(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "deploy_id": view["deploy_id"],
        "template": view["template_id"],
        "zone": view["zone_id"],
        "state": "QUEUED" if view.get("queued") else view["state"],
        "host": view.get("host_id"),
        "bytes": _bytes(view),
        "rate": _rate(view.get("rate_bps")) if view["state"] == msg.AttemptState.RUNNING else None,
        "duration": f"{view['duration_s']:.1f} s",
        "created": view["created_at"],
    }


def print_deploy(view: dict[str, Any]) -> None:
    """One deploy as a record: its outcome's fields, and one line an attempt."""
    record: dict[str, Any] = {
        "deploy_id": view["deploy_id"],
        "template_id": view["template_id"],
        "zone_id": view["zone_id"],
        "state": view["state"],
    }
    if view.get("queued"):
        record["queued"] = queued_line(str(view.get("host_id")))
    record |= {
        "host_id": view.get("host_id"),
        "bytes": _bytes(view),
        "rate": _rate(view.get("rate_bps")),
        "duration": f"{view['duration_s']:.1f} s",
        "created_at": view["created_at"],
        "updated_at": view["updated_at"],
    }
    for key in ("pool_id", "path", "size", "digest", "image_digest", "cached", "code", "message"):
        if view.get(key) is not None:
            record[key] = view[key]
    record["attempts"] = "; ".join(attempt_line(a) for a in view["attempts"])
    print_record(record, title=f"deploy {view['state'].lower()}")


def attempt_line(attempt: dict[str, Any]) -> str:
    parts = [f"{attempt['host_id']}: {attempt['state']}"]
    if attempt.get("error_code"):
        parts.append(str(attempt["error_code"]))
    if attempt.get("bytes_done") is not None:
        parts.append(_bytes(attempt) or "")
    if attempt.get("message"):
        parts.append(str(attempt["message"]))
    return ", ".join(parts)


def _bytes(view: dict[str, Any]) -> str | None:
    done, total = view.get("bytes_done"), view.get("total")
    if done is None:
        return None
    if total is None:
        return human_size(done)
    return f"{human_size(done)} of {human_size(total)}"


def _rate(rate: float | None) -> str | None:
    return None if rate is None else f"{human_size(int(rate))}/s"

"""`directdl template ...`: register, list, show, update and delete templates."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from directdl.cli import resolve
from directdl.cli.output import print_record, print_rows
from directdl.cli.session import Session
from directdl.contracts import template as msg

app = typer.Typer(help="Register and manage templates for direct download.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
COLUMNS = ("id", "name", "format", "template_type", "protocol", "zone_ids", "checksum")
TemplateRef = Annotated[
    str, typer.Argument(metavar="TEMPLATE", help="Name, id, or a unique prefix of the id.")
]
NameZone = Annotated[
    str | None, typer.Option("--zone", help="Zone id: narrows a name several zones use.")
]


def _session(ctx: typer.Context) -> Session:
    session: Session = ctx.obj
    return session


def _show(result: dict[str, Any], as_json: bool) -> None:
    if not as_json:
        print_record(result["template"])


@app.command(
    epilog="Example: directdl template register --name centos --zone zone-1 --format QCOW2 "
    "--url https://images.example/centos.qcow2 --checksum '{SHA-256}ab12...'"
)
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Unique within each zone.")],
    url: Annotated[str, typer.Option(help="http(s)://, nfs://, or a .metalink/.meta4 URL.")],
    zone: Annotated[list[str], typer.Option(help="Zone id; repeat for several zones.")],
    fmt: Annotated[msg.TemplateFormat, typer.Option("--format", case_sensitive=False)],
    hypervisor: Annotated[str, typer.Option()] = "KVM",
    checksum: Annotated[str | None, typer.Option(help="{ALGO}hex, or bare hex.")] = None,
    template_type: Annotated[
        msg.TemplateType, typer.Option("--type", case_sensitive=False)
    ] = msg.TemplateType.USER,
    detail: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE, e.g. 'HTTP_HEADER:Authorization=Bearer x'.")
    ] = None,
    validate_url: Annotated[
        bool, typer.Option(help="Check now that the URL answers and learn the size.")
    ] = True,
    as_json: Json = False,
) -> None:
    """Register a template; nothing is downloaded until it is deployed."""
    details = dict(_key_value(d) for d in detail or [])
    command = msg.RegisterTemplate(
        name=name,
        url=url,
        zone_id=zone if len(zone) > 1 else zone[0],
        hypervisor=hypervisor,
        format=fmt,
        checksum=checksum,
        template_type=template_type,
        details=details,
        validate_url=validate_url,
    )
    _show(_session(ctx).call(command, as_json), as_json)


@app.command("list", epilog="Example: directdl template list --zone zone-1 --json")
def list_(
    ctx: typer.Context,
    zone: Annotated[str | None, typer.Option()] = None,
    template_type: Annotated[
        msg.TemplateType | None, typer.Option("--type", case_sensitive=False)
    ] = None,
    name: Annotated[str | None, typer.Option(help="Exact name.")] = None,
    keyword: Annotated[str | None, typer.Option(help="Part of the name.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Json = False,
) -> None:
    """List templates."""
    command = msg.ListTemplates(
        zone_id=zone,
        template_type=template_type,
        name=name,
        keyword=keyword,
        page=page,
        page_size=page_size,
    )
    result = _session(ctx).call(command, as_json)
    if not as_json:
        shown = len(result["items"])
        print_rows(
            result["items"], COLUMNS, caption=f"{shown} of {result['total']}, page {result['page']}"
        )


@app.command(epilog="Example: directdl template show 6f1c (or centos, or the whole id)")
def show(
    ctx: typer.Context, template: TemplateRef, zone: NameZone = None, as_json: Json = False
) -> None:
    """Show one template."""
    session = _session(ctx)
    template_id = resolve.template(session, template, zone)
    _show(session.call(msg.GetTemplate(id=template_id), as_json), as_json)


@app.command(epilog="Example: directdl template update 6f1c --type SYSTEM")
def update(
    ctx: typer.Context,
    template: TemplateRef,
    zone: NameZone = None,
    name: Annotated[str | None, typer.Option()] = None,
    template_type: Annotated[
        msg.TemplateType | None, typer.Option("--type", case_sensitive=False)
    ] = None,
    as_json: Json = False,
) -> None:
    """Rename a template, or change its type (USER or ROUTING to SYSTEM)."""
    session = _session(ctx)
    template_id = resolve.template(session, template, zone)
    command = msg.UpdateTemplate(id=template_id, name=name, template_type=template_type)
    _show(session.call(command, as_json), as_json)


@app.command(epilog="Example: directdl template delete 6f1c")
def delete(
    ctx: typer.Context, template: TemplateRef, zone: NameZone = None, as_json: Json = False
) -> None:
    """Delete a template from the catalogue."""
    session = _session(ctx)
    template_id = resolve.template(session, template, zone)
    _show(session.call(msg.DeleteTemplate(id=template_id), as_json), as_json)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--detail")
    return key, value

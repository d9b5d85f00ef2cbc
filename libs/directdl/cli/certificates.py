"""`directdl cert ...`: upload, revoke, list, show, provision and delete certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from directdl.cli import resolve
from directdl.cli.output import Exit, print_error, print_record, print_rows
from directdl.cli.session import Session
from directdl.contracts import certificate as msg
from directdl.contracts.errors import ErrorCode

app = typer.Typer(help="Certificates that hosts trust for HTTPS downloads.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
Zone = Annotated[str, typer.Option("--zone", help="Zone id.")]
Host = Annotated[str | None, typer.Option("--host", help="Only this host.")]
CertRef = Annotated[
    str,
    typer.Option("--id", help="The certificate's id, a unique prefix of it, or its name (alias)."),
]
NameZone = Annotated[
    str | None, typer.Option("--zone", help="Zone id: narrows a name several zones use.")
]


def _session(ctx: typer.Context) -> Session:
    session: Session = ctx.obj
    return session


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return
    print_record(result["certificate"], title="certificate")
    print_rows(result["hosts"], ("host_id", "state", "reason"), caption="per host")


@app.command(epilog="Example: directdl cert upload --name repo-ca --zone zone-1 --file ca.pem")
def upload(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Alias on the hosts: a DNS label.")],
    zone: Zone,
    file: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="PEM certificate.")],
    host: Host = None,
    hypervisor: Annotated[str, typer.Option()] = "KVM",
    as_json: Json = False,
) -> None:
    """Upload a certificate to every Up host of a zone, or to one host."""
    command = msg.UploadCertificate(
        name=name, zone_id=zone, hypervisor=hypervisor, certificate=file.read_text(), host_id=host
    )
    _show(_session(ctx).call(command, as_json), as_json)


@app.command(epilog="Example: directdl cert revoke --name repo-ca --zone zone-1 [--host host-1]")
def revoke(
    ctx: typer.Context,
    zone: Zone,
    certificate_id: Annotated[
        str | None,
        typer.Option("--id", help="The certificate's id, a unique prefix of it, or its name."),
    ] = None,
    name: Annotated[str | None, typer.Option()] = None,
    host: Host = None,
    hypervisor: Annotated[str, typer.Option()] = "KVM",
    as_json: Json = False,
) -> None:
    """Remove a certificate from the hosts' trust stores."""
    if certificate_id is None and name is None:
        raise typer.BadParameter("give --id or --name")
    if certificate_id is not None:
        certificate_id = resolve.certificate(_session(ctx), certificate_id, zone)
    command = msg.RevokeCertificate(
        id=certificate_id, name=name, hypervisor=hypervisor, zone_id=zone, host_id=host
    )
    _show(_session(ctx).call(command, as_json), as_json)


@app.command("list", epilog="Example: directdl cert list --zone zone-1 --hosts")
def list_(
    ctx: typer.Context,
    zone: Annotated[str | None, typer.Option("--zone")] = None,
    certificate_id: Annotated[str | None, typer.Option("--id")] = None,
    hosts: Annotated[bool, typer.Option("--hosts", help="Each host's recorded state.")] = False,
    as_json: Json = False,
) -> None:
    """List certificates, with each host's state from its own answers."""
    command = msg.ListCertificates(id=certificate_id, zone_id=zone, list_hosts=hosts)
    result = _session(ctx).call(command, as_json)
    if as_json:
        return
    rows = []
    for entry in result["items"]:
        c = entry["certificate"]
        row = {k: c[k] for k in ("id", "alias", "zone_id", "not_after", "revoked")}
        row["hosts"] = ", ".join(f"{h['host_id']}:{h['state']}" for h in entry.get("hosts") or [])
        rows.append(row)
    print_rows(
        rows, ("id", "alias", "zone_id", "not_after", "revoked", *(("hosts",) if hosts else ()))
    )


@app.command(epilog="Example: directdl cert show --id repo-ca --zone zone-1")
def show(
    ctx: typer.Context,
    certificate: CertRef,
    zone: NameZone = None,
    as_json: Json = False,
) -> None:
    """Show one certificate, with each host's recorded state."""
    session = _session(ctx)
    certificate_id = resolve.certificate(session, certificate, zone)
    result = session.call(msg.ListCertificates(id=certificate_id, list_hosts=True), as_json)
    if not result["items"]:  # a whole id is sent unlooked-up: it may name nothing
        print_error(ErrorCode.NOT_FOUND, f"no certificate has the id {certificate_id!r}")
        raise typer.Exit(Exit.ERROR_REPLY)
    _show(result["items"][0], as_json)


@app.command(epilog="Example: directdl cert provision --id 3f2a --host host-2")
def provision(
    ctx: typer.Context,
    certificate: CertRef,
    host: Annotated[str, typer.Option("--host")],
    zone: NameZone = None,
    as_json: Json = False,
) -> None:
    """Push one stored certificate to one host."""
    session = _session(ctx)
    certificate_id = resolve.certificate(session, certificate, zone)
    _show(
        session.call(msg.ProvisionCertificate(id=certificate_id, host_id=host), as_json),
        as_json,
    )


@app.command(epilog="Example: directdl cert delete --id repo-ca --zone zone-1")
def delete(
    ctx: typer.Context,
    certificate: CertRef,
    zone: NameZone = None,
    as_json: Json = False,
) -> None:
    """Revoke a certificate everywhere, then forget it."""
    session = _session(ctx)
    certificate_id = resolve.certificate(session, certificate, zone)
    _show(session.call(msg.DeleteCertificate(id=certificate_id), as_json), as_json)

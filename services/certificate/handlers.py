"""Certificate handlers: upload, revoke, list, provision, delete; and what hosts report."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from certificate import fanout
from certificate.adapters.orm import CertificateRow, HostRow
from certificate.adapters.repository import host_is_up, placements, view
from certificate.domain.alias import check_alias
from certificate.domain.certificate import parse_certificate, same_certificate
from certificate.uow import CertificateUnitOfWork
from directdl.bus.processing import Deferred, Route, routes, without_inbox
from directdl.contracts import certificate as msg
from directdl.contracts.errors import Conflict, ErrorCode, MessageError, NotFound, Unsupported
from directdl.contracts.host import HostHeartbeat
from directdl.settings_catalog import SETTINGS

Outcome = Deferred | msg.CertificateOutcome
# A host that holds a certificate by our record, or by its own heartbeat, is asked to drop it.
HELD = frozenset({msg.HostCertState.UPLOADED, msg.HostCertState.FAILED})


def _defaults(name: str) -> int | float | str:
    return SETTINGS[name].default


@dataclass(frozen=True)
class Policy:
    """Read from the live settings at each command, so a change applies at once."""

    setting: Callable[[str], int | float | str] = _defaults

    @property
    def host_timeout(self) -> float:
        return float(self.setting("directdl.certificate.host.timeout"))

    @property
    def expiry_warning_days(self) -> int:
        return int(self.setting("directdl.certificate.expiry.warning.days"))


def upload(cmd: msg.UploadCertificate, uow: CertificateUnitOfWork, policy: Policy) -> Outcome:
    alias = check_alias(cmd.name)
    _check_hypervisor(cmd.hypervisor)
    parsed = parse_certificate(cmd.certificate, fanout.now())
    _check_zone(uow, cmd.zone_id)
    host = _host(uow, cmd.zone_id, cmd.host_id, must_be_up=True) if cmd.host_id else None
    cert = uow.certificates.by_alias(cmd.zone_id, alias)
    if cert is not None and not same_certificate(cert.pem, parsed.pem) and host is None:
        raise Conflict(
            f"alias {alias!r} in zone {cmd.zone_id!r} already names another certificate "
            f"(SHA-256 {cert.fingerprint_sha256}); revoke it or choose another alias",
            details={"field": "name", "value": alias, "existing": cert.id},
        )
    # For a named host with a known alias, CloudStack re-pushes the stored certificate.
    if cert is None:
        cert = uow.certificates.add(
            CertificateRow(
                id=str(uuid.uuid4()),
                alias=alias,
                zone_id=cmd.zone_id,
                hypervisor="KVM",
                pem=parsed.pem,
                subject=parsed.subject,
                issuer=parsed.issuer,
                serial=parsed.serial,
                not_before=parsed.not_before,
                not_after=parsed.not_after,
                fingerprint_sha256=parsed.fingerprint_sha256,
                revoked=False,
                created_at=fanout.now(),
            )
        )
    cert.revoked = False  # uploading again is how an operator takes a revocation back
    targets = (
        [host.host_id]
        if host
        else [h.host_id for h in uow.hosts.up_in_zone(cmd.zone_id, fanout.now())]
    )
    return fanout.start(
        uow, cert, "upload", install=targets, host_id=cmd.host_id, timeout=policy.host_timeout
    )


def revoke(cmd: msg.RevokeCertificate, uow: CertificateUnitOfWork, policy: Policy) -> Outcome:
    if cmd.id is not None:
        cert = _certificate(uow, cmd.id)
    else:
        assert cmd.name is not None and cmd.hypervisor is not None
        _check_hypervisor(cmd.hypervisor)
        found = uow.certificates.by_alias(cmd.zone_id, check_alias(cmd.name))
        if found is None:
            raise NotFound(
                f"no certificate {cmd.name!r} in zone {cmd.zone_id!r}", details={"field": "name"}
            )
        cert = found
    if cert.zone_id != cmd.zone_id:
        raise NotFound(
            f"certificate {cert.id} is not in zone {cmd.zone_id!r}", details={"field": "zone_id"}
        )
    if cmd.host_id:
        hosts = [_host(uow, cmd.zone_id, cmd.host_id, must_be_up=True)]
    else:
        hosts = uow.hosts.up_in_zone(cmd.zone_id, fanout.now())
        cert.revoked = True  # never pushed again, to this zone's hosts old or new
    holding = [h.host_id for h in hosts if _holds(cert, h)]
    skipped = [h.host_id for h in hosts if h.host_id not in holding]
    return fanout.start(
        uow,
        cert,
        "revoke",
        remove=holding,
        skipped=skipped,
        host_id=cmd.host_id,
        timeout=policy.host_timeout,
    )


def provision(cmd: msg.ProvisionCertificate, uow: CertificateUnitOfWork, policy: Policy) -> Outcome:
    cert = _certificate(uow, cmd.id)
    if cert.revoked:
        raise Conflict(
            f"certificate {cert.alias!r} ({cert.id}) is revoked and is not pushed to hosts",
            details={"field": "id", "value": cmd.id},
        )
    host = _host(uow, cert.zone_id, cmd.host_id, must_be_up=True)
    return fanout.start(uow, cert, "provision", install=[host.host_id], timeout=policy.host_timeout)


def delete(cmd: msg.DeleteCertificate, uow: CertificateUnitOfWork, policy: Policy) -> Outcome:
    cert = _certificate(uow, cmd.id)
    cert.revoked = True
    hosts = uow.hosts.up_in_zone(cert.zone_id, fanout.now())
    holding = [h.host_id for h in hosts if _holds(cert, h)]
    return fanout.start(uow, cert, "delete", remove=holding, timeout=policy.host_timeout)


def list_certificates(cmd: msg.ListCertificates, uow: CertificateUnitOfWork) -> msg.CertificateList:
    rows = uow.certificates.listing(cmd.id, cmd.zone_id)
    return msg.CertificateList(
        items=[
            msg.CertificateEntry(
                certificate=view(r), hosts=placements(r) if cmd.list_hosts else None
            )
            for r in rows
        ]
    )


def heartbeat(evt: HostHeartbeat, uow: CertificateUnitOfWork) -> None:
    uow.hosts.record(evt)


def _holds(cert: CertificateRow, host: HostRow) -> bool:
    recorded = next((p.state for p in cert.placements if p.host_id == host.host_id), None)
    reported = any(c["alias"] == cert.alias for c in host.certificates)
    return recorded in HELD or reported


def _certificate(uow: CertificateUnitOfWork, certificate_id: str) -> CertificateRow:
    cert = uow.certificates.get(certificate_id)
    if cert is None:
        raise NotFound(f"no certificate with id {certificate_id!r}", details={"field": "id"})
    return cert


def _host(uow: CertificateUnitOfWork, zone_id: str, host_id: str, must_be_up: bool) -> HostRow:
    host = uow.hosts.get(host_id)
    if host is None or host.zone_id != zone_id:
        raise NotFound(
            f"no host {host_id!r} in zone {zone_id!r}",
            details={"field": "host_id", "value": host_id},
        )
    if must_be_up and not host_is_up(host, fanout.now()):
        raise MessageError(
            f"host {host_id!r} is not Up (last heard from {host.last_seen.isoformat()})",
            code=ErrorCode.UNAVAILABLE,
            details={"field": "host_id", "value": host_id},
        )
    return host


def _check_zone(uow: CertificateUnitOfWork, zone_id: str) -> None:
    if not uow.hosts.knows_zone(zone_id):
        raise NotFound(
            f"zone {zone_id!r} is unknown: no host of it has been heard from",
            details={"field": "zone_id", "value": zone_id},
        )


def _check_hypervisor(hypervisor: str) -> None:
    if hypervisor.strip().upper() != "KVM":
        raise Unsupported(
            f"certificates for direct download are only for KVM hosts, not {hypervisor!r}",
            details={"field": "hypervisor", "value": hypervisor},
        )


def _reported(action: str) -> Callable[[msg.HostCertReport, CertificateUnitOfWork], None]:
    def handle(evt: msg.HostCertReport, uow: CertificateUnitOfWork) -> None:
        fanout.record(uow, evt, action, getattr(evt, "reason", None))

    return handle


def queues(policy: Policy) -> dict[str, dict[str, Route]]:
    def with_policy(handler: Callable[..., Outcome]) -> Callable[..., Outcome]:
        return lambda cmd, uow: handler(cmd, uow, policy)

    return {
        "commands": routes(
            (msg.UploadCertificate, with_policy(upload)),
            (msg.RevokeCertificate, with_policy(revoke)),
            (msg.ProvisionCertificate, with_policy(provision)),
            (msg.DeleteCertificate, with_policy(delete)),
            (msg.ListCertificates, list_certificates),
        ),
        "events": without_inbox(
            routes(
                (HostHeartbeat, heartbeat),
                (msg.CertificateInstalled, _reported("install")),
                (msg.CertificateRemoved, _reported("remove")),
                (msg.CertificateFailed, _reported("failed")),
            ),
            HostHeartbeat,
        ),
    }

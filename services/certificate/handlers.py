"""Certificate handlers: plain functions of (message, unit of work, dependencies), and the table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

import structlog

from certificate.adapters.repository import CertificateFilter
from certificate.domain import operation
from certificate.domain.alias import check_alias
from certificate.domain.certificate import parse_certificate, same_certificate
from certificate.domain.model import Certificate, Host
from certificate.domain.operation import ANNOUNCEMENTS, OperationKind, Progress, Request
from certificate.uow import CertificateUnitOfWork
from directdl.bus.dispatch import Every, Handlers, On
from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts import certificate as msg
from directdl.contracts.certificate import HostCertState
from directdl.contracts.errors import Conflict, ErrorCode, MessageError, NotFound, Unsupported
from directdl.contracts.host import HostHeartbeat
from directdl.contracts.senders import CERTIFICATE
from directdl.runtime import metrics
from directdl.runtime.announce import ANNOUNCE_HANDLERS
from directdl.runtime.live_settings import SETTINGS_HANDLERS

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
"""Now, as an aware datetime; a test's clock moves on instead of waiting."""
Seconds = Callable[[], float]
"""How long hosts have to answer, now (from the live settings)."""
Days = Callable[[], int]
"""How many days before expiry a certificate is announced, now (from the live settings)."""
Outcome = Deferred | msg.CertificateOutcome


# A command's handler checks and loads what it names, lets `domain.operation` decide what is
# asked of which hosts, and carries that out (`_carry_out`); so do the hosts' answers and the
# late-answers timer. What each may publish is in HANDLERS, at the bottom.


def upload(
    cmd: msg.UploadCertificate, uow: CertificateUnitOfWork, clock: Clock, host_timeout: Seconds
) -> Outcome:
    now = clock()
    alias = check_alias(cmd.name)
    _check_hypervisor(cmd.hypervisor)
    parsed = parse_certificate(cmd.certificate, now)
    if not uow.hosts.knows_zone(cmd.zone_id):
        raise NotFound(
            f"zone {cmd.zone_id!r} is unknown: no host of it has been heard from",
            details={"field": "zone_id", "value": cmd.zone_id},
        )
    host = _up_host(uow, cmd.zone_id, cmd.host_id, now) if cmd.host_id else None
    cert = uow.certificates.by_alias(cmd.zone_id, alias)
    if cert is not None and not same_certificate(cert.pem, parsed.pem) and host is None:
        raise Conflict(
            f"alias {alias!r} in zone {cmd.zone_id!r} already names another certificate "
            f"(SHA-256 {cert.fingerprint_sha256}); revoke it or choose another name (CLI: --name)",
            details={"field": "name", "value": alias, "existing": cert.id},
        )
    # For a named host with a known alias, CloudStack re-pushes the stored certificate.
    cert = cert or Certificate.new(alias, cmd.zone_id, parsed, now)
    hosts = [host] if host else uow.hosts.up_in_zone(cmd.zone_id, now)
    request = _request(uow, now, host_timeout, cmd.host_id)
    return _started(uow, operation.upload(cert, hosts, request))


def revoke(
    cmd: msg.RevokeCertificate, uow: CertificateUnitOfWork, clock: Clock, host_timeout: Seconds
) -> Outcome:
    now = clock()
    if cmd.id is not None:
        cert = _certificate(uow, cmd.id)
    else:
        assert cmd.name is not None and cmd.hypervisor is not None  # the contract sees to it
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
        hosts = [_up_host(uow, cmd.zone_id, cmd.host_id, now)]
    else:
        hosts = uow.hosts.up_in_zone(cmd.zone_id, now)
    request = _request(uow, now, host_timeout, cmd.host_id)
    return _started(uow, operation.revoke(cert, hosts, request))


def provision(
    cmd: msg.ProvisionCertificate, uow: CertificateUnitOfWork, clock: Clock, host_timeout: Seconds
) -> Outcome:
    now = clock()
    cert = _certificate(uow, cmd.id)
    operation.check_pushable(cert)  # before its host: revoked is the answer, whatever the host
    host = _up_host(uow, cert.zone_id, cmd.host_id, now)
    request = _request(uow, now, host_timeout, cmd.host_id)
    return _started(uow, operation.provision(cert, host, request))


def delete(
    cmd: msg.DeleteCertificate, uow: CertificateUnitOfWork, clock: Clock, host_timeout: Seconds
) -> Outcome:
    now = clock()
    cert = _certificate(uow, cmd.id)
    hosts = uow.hosts.up_in_zone(cert.zone_id, now)
    return _started(uow, operation.delete(cert, hosts, _request(uow, now, host_timeout)))


def list_certificates(cmd: msg.ListCertificates, uow: CertificateUnitOfWork) -> msg.CertificateList:
    return msg.CertificateList(
        items=[
            msg.CertificateEntry(certificate=c.view(), hosts=c.hosts() if cmd.list_hosts else None)
            for c in uow.certificates.listing(_filter(cmd))
        ]
    )


def _filter(cmd: msg.ListCertificates) -> CertificateFilter:
    # Aliases are stored in lower case, as keytool lists them (domain.alias).
    alias = cmd.name.lower() if cmd.name is not None else None
    return CertificateFilter(cmd.id, cmd.zone_id, alias, cmd.id_prefix)


def heartbeat(evt: HostHeartbeat, uow: CertificateUnitOfWork) -> None:
    uow.hosts.record(evt)


# What hosts answer. The broker vouches that each comes from the host it names.


def host_installed(evt: msg.CertificateInstalled, uow: CertificateUnitOfWork, clock: Clock) -> None:
    _answered(uow, evt, HostCertState.UPLOADED, None, clock())


def host_removed(evt: msg.CertificateRemoved, uow: CertificateUnitOfWork, clock: Clock) -> None:
    _answered(uow, evt, HostCertState.REVOKED, None, clock())


def host_failed(evt: msg.CertificateFailed, uow: CertificateUnitOfWork, clock: Clock) -> None:
    _answered(uow, evt, HostCertState.FAILED, evt.reason, clock())


# The timers.


def expire_late_answers(uow: CertificateUnitOfWork, clock: Clock, host_timeout: Seconds) -> None:
    """Hosts that did not answer in time are FAILED; their operations are answered."""
    now = clock()
    for overdue in uow.operations.overdue(now):
        cert = uow.certificates.get(overdue.certificate_id)
        _carry_out(uow, operation.expired(overdue, cert, now, host_timeout()))


def warn_expiring(uow: CertificateUnitOfWork, clock: Clock, expiry_warning_days: Days) -> None:
    """A certificate that expires silently breaks every HTTPS deploy: say so, once a day."""
    now = clock()
    for cert in uow.certificates.expiring(now + timedelta(days=expiry_warning_days())):
        if cert.warned_of_expiry_lately(now):
            continue
        uow.emit(msg.CertificateExpiring(certificate=cert.view(), days_left=cert.days_left(now)))
        uow.certificates.save(replace(cert, expiry_warned_at=now))


def _answered(
    uow: CertificateUnitOfWork,
    report: msg.HostCertReport,
    state: HostCertState,
    reason: str | None,
    now: datetime,
) -> None:
    # The operation first: it is locked, and the timer locks operations before certificates.
    current = uow.operations.get(report.operation_id)
    cert = uow.certificates.get(report.certificate_id)
    _carry_out(uow, operation.answered(current, cert, report.host_id, state, reason, now))


def _started(uow: CertificateUnitOfWork, progress: Progress) -> Outcome:
    """A command's reply: its outcome when no host needed asking, else later, when all have."""
    _carry_out(uow, progress)
    return DEFERRED if progress.outcome is None else progress.outcome


# What a host answered, as `directdl_certificate_operations_total` labels its outcome.
_HOST_OUTCOMES = {
    HostCertState.UPLOADED: metrics.SUCCEEDED,
    HostCertState.REVOKED: metrics.SUCCEEDED,
    HostCertState.FAILED: metrics.FAILED,
    HostCertState.SKIPPED: metrics.SKIPPED,
}


def _carry_out(uow: CertificateUnitOfWork, progress: Progress) -> None:
    """Store what a step of an operation changed; publish and answer what it decided."""
    if progress.operation is not None:
        uow.operations.save(progress.operation)
        kind = progress.operation.kind.value
        for settled in progress.settled:
            counter = metrics.certificate_operations.labels(
                CERTIFICATE, settled.host_id, kind, _HOST_OUTCOMES[settled.state]
            )
            uow.after_commit(counter.inc)
            uow.after_commit(partial(_log_settled, progress.operation, settled))
    if progress.certificate is not None and progress.forget:
        uow.certificates.delete(progress.certificate.id)
    elif progress.certificate is not None:
        uow.certificates.save(progress.certificate)
    for message, routing_key in progress.sends:
        uow.emit(message, routing_key=routing_key)
    if progress.answer is not None:
        answer = progress.answer
        uow.reply(answer.reply_to, answer.correlation_id, answer.reply)


def _log_settled(op: operation.Operation, settled: msg.HostOutcome) -> None:
    """What a host made of a certificate: once per host, as it answers (or fails to)."""
    fields = {"certificate_id": op.certificate_id, "host_id": settled.host_id}
    if settled.state is HostCertState.FAILED:
        log.warning("cert.host_failed", kind=op.kind.value, reason=settled.reason, **fields)
    elif settled.state is HostCertState.UPLOADED:
        log.info("cert.pushed", **fields)
    elif settled.state is HostCertState.REVOKED:
        log.info("cert.removed", **fields)


def _request(
    uow: CertificateUnitOfWork, now: datetime, host_timeout: Seconds, host_id: str | None = None
) -> Request:
    context = uow.message
    return Request(
        deadline=now + timedelta(seconds=host_timeout()),
        host_id=host_id,
        reply_to=context.reply_to if context else None,
        correlation_id=context.correlation_id if context else None,
    )


def _certificate(uow: CertificateUnitOfWork, certificate_id: str) -> Certificate:
    cert = uow.certificates.get(certificate_id)
    if cert is None:
        raise NotFound(f"no certificate with id {certificate_id!r}", details={"field": "id"})
    return cert


def _up_host(uow: CertificateUnitOfWork, zone_id: str, host_id: str, now: datetime) -> Host:
    host = uow.hosts.get(host_id)
    if host is None or host.zone_id != zone_id:
        raise NotFound(
            f"no host {host_id!r} in zone {zone_id!r}",
            details={"field": "host_id", "value": host_id},
        )
    if not host.is_up(now):
        raise MessageError(
            f"host {host_id!r} is not Up (last heard from {host.last_seen.isoformat()})",
            code=ErrorCode.UNAVAILABLE,
            details={"field": "host_id", "value": host_id},
        )
    return host


def _check_hypervisor(hypervisor: str) -> None:
    if hypervisor.strip().upper() != "KVM":
        raise Unsupported(
            f"certificates for direct download are only for KVM hosts, not {hypervisor!r}",
            details={"field": "hypervisor", "value": hypervisor},
        )


HANDLERS = (
    Handlers(
        commands={
            msg.UploadCertificate: On(upload, emits=OperationKind.UPLOAD.rules.emits),
            msg.RevokeCertificate: On(revoke, emits=OperationKind.REVOKE.rules.emits),
            msg.ProvisionCertificate: On(provision, emits=OperationKind.PROVISION.rules.emits),
            msg.DeleteCertificate: On(delete, emits=OperationKind.DELETE.rules.emits),
            msg.ListCertificates: On(list_certificates),
        },
        events={
            HostHeartbeat: On(heartbeat, idempotent=True),
            # An answer may end any kind of operation, which announces how it ended.
            msg.CertificateInstalled: On(host_installed, emits=ANNOUNCEMENTS),
            msg.CertificateRemoved: On(host_removed, emits=ANNOUNCEMENTS),
            msg.CertificateFailed: On(host_failed, emits=ANNOUNCEMENTS),
        },
        timers={
            "late-answers": Every(
                "late_answers_interval",
                expire_late_answers,
                emits=ANNOUNCEMENTS,
            ),
            "expiry-watch": Every(
                "expiry_check_interval", warn_expiring, emits=(msg.CertificateExpiring,)
            ),
        },
    )
    | SETTINGS_HANDLERS
    | ANNOUNCE_HANDLERS
)
"""What the certificate service does with each message, and what each handler may publish."""

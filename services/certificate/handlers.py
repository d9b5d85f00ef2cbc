"""Certificate handlers: plain functions of (message, unit of work, dependencies), and the table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from certificate.adapters.repository import CertificateFilter
from certificate.answers import expire_late_answers, host_answers
from certificate.beats import heartbeats, inventories
from certificate.domain import operation
from certificate.domain.alias import check_alias
from certificate.domain.certificate import parse_certificate, same_certificate
from certificate.domain.model import Certificate, Host
from certificate.domain.operation import (
    ANNOUNCEMENTS,
    OperationKind,
    Progress,
    Request,
)
from certificate.progress import carry_out
from certificate.uow import CertificateUnitOfWork
from directdl.bus.dispatch import Every, Handlers, On, OnBatch
from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts import certificate as msg
from directdl.contracts.errors import Conflict, ErrorCode, MessageError, NotFound, Unsupported
from directdl.contracts.host import HostHeartbeat, HostInventory, RequestInventory
from directdl.liveness import HeartbeatClock
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
# asked of which hosts, and carries that out (`progress.carry_out`); so do the hosts' answers
# and the late-answers timer (`answers`). What each may publish is in HANDLERS, at the bottom.


def upload(
    cmd: msg.UploadCertificate,
    uow: CertificateUnitOfWork,
    clock: Clock,
    host_timeout: Seconds,
    heartbeat_clock: HeartbeatClock,
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
    beaten = heartbeat_clock.now()
    host = _up_host(uow, cmd.zone_id, cmd.host_id, beaten) if cmd.host_id else None
    cert = uow.certificates.by_alias(cmd.zone_id, alias)
    if cert is not None and not same_certificate(cert.pem, parsed.pem) and host is None:
        raise Conflict(
            f"alias {alias!r} in zone {cmd.zone_id!r} already names another certificate "
            f"(SHA-256 {cert.fingerprint_sha256}); revoke it or choose another name (CLI: --name)",
            details={"field": "name", "value": alias, "existing": cert.id},
        )
    # For a named host with a known alias, CloudStack re-pushes the stored certificate.
    cert = cert or Certificate.new(alias, cmd.zone_id, parsed, now)
    hosts = [host] if host else uow.hosts.up_in_zone(cmd.zone_id, beaten)
    request = _request(uow, now, host_timeout, cmd.host_id)
    return _started(uow, operation.upload(cert, hosts, request))


def revoke(
    cmd: msg.RevokeCertificate,
    uow: CertificateUnitOfWork,
    clock: Clock,
    host_timeout: Seconds,
    heartbeat_clock: HeartbeatClock,
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
    beaten = heartbeat_clock.now()
    if cmd.host_id:
        hosts = [_up_host(uow, cmd.zone_id, cmd.host_id, beaten)]
    else:
        hosts = uow.hosts.up_in_zone(cmd.zone_id, beaten)
    request = _request(uow, now, host_timeout, cmd.host_id)
    return _started(uow, operation.revoke(cert, hosts, request))


def provision(
    cmd: msg.ProvisionCertificate,
    uow: CertificateUnitOfWork,
    clock: Clock,
    host_timeout: Seconds,
    heartbeat_clock: HeartbeatClock,
) -> Outcome:
    now = clock()
    cert = _certificate(uow, cmd.id)
    operation.check_pushable(cert)  # before its host: revoked is the answer, whatever the host
    host = _up_host(uow, cert.zone_id, cmd.host_id, heartbeat_clock.now())
    request = _request(uow, now, host_timeout, cmd.host_id)
    return _started(uow, operation.provision(cert, host, request))


def delete(
    cmd: msg.DeleteCertificate,
    uow: CertificateUnitOfWork,
    clock: Clock,
    host_timeout: Seconds,
    heartbeat_clock: HeartbeatClock,
) -> Outcome:
    now = clock()
    cert = _certificate(uow, cmd.id)
    hosts = uow.hosts.up_in_zone(cert.zone_id, heartbeat_clock.now())
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


# The timers.


def warn_expiring(uow: CertificateUnitOfWork, clock: Clock, expiry_warning_days: Days) -> None:
    """A certificate that expires silently breaks every HTTPS deploy: say so, once a day."""
    now = clock()
    for cert in uow.certificates.expiring(now + timedelta(days=expiry_warning_days())):
        if cert.warned_of_expiry_lately(now):
            continue
        uow.emit(msg.CertificateExpiring(certificate=cert.view(), days_left=cert.days_left(now)))
        uow.certificates.save(replace(cert, expiry_warned_at=now))


def _started(uow: CertificateUnitOfWork, progress: Progress) -> Outcome:
    """A command's reply: its outcome when no host needed asking, else later, when all have."""
    carry_out(uow, progress)
    return DEFERRED if progress.outcome is None else progress.outcome


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
        batched={
            # One queue for both, so that an inventory is applied before the beat after it.
            "hosts": {
                HostInventory: OnBatch(inventories),
                HostHeartbeat: OnBatch(heartbeats, emits=(RequestInventory,)),
            },
            # Answers on a queue of their own: a heartbeat backlog never makes them late. An
            # answer may end any kind of operation, which announces how it ended.
            "answers": {
                msg.CertificateInstalled: OnBatch(host_answers, emits=ANNOUNCEMENTS),
                msg.CertificateRemoved: OnBatch(host_answers, emits=ANNOUNCEMENTS),
                msg.CertificateFailed: OnBatch(host_answers, emits=ANNOUNCEMENTS),
            },
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

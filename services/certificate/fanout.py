"""Fanning one command out to hosts: ask each, record its real answer, reply when all have.

A host that does not answer within the timeout is FAILED, not assumed done: CloudStack records
success whatever the host said, which is why its sync never retries.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from certificate.adapters.orm import CertificateRow, OperationRow
from certificate.adapters.repository import view
from certificate.uow import CertificateUnitOfWork
from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts import certificate as msg
from directdl.contracts.reply import Reply
from directdl.runtime import metrics

# What a host's answer makes of its placement.
PLACED = {"install": msg.HostCertState.UPLOADED, "remove": msg.HostCertState.REVOKED}


def now() -> datetime:
    return datetime.now(UTC)


def start(
    uow: CertificateUnitOfWork,
    cert: CertificateRow,
    kind: str,
    *,
    install: Sequence[str] = (),
    remove: Sequence[str] = (),
    skipped: Sequence[str] = (),
    host_id: str | None = None,
    timeout: float,
) -> Deferred | msg.CertificateOutcome:
    """Send the installs and removals; the outcome is the reply now if nothing was sent."""
    moment = now()
    context = uow.message
    operation = uow.operations.add(
        OperationRow(
            id=str(uuid.uuid4()),
            kind=kind,
            host_id=host_id,
            certificate_id=cert.id,
            reply_to=context.reply_to if context else None,
            correlation_id=context.correlation_id if context else None,
            waiting_for=[*install, *remove],
            outcomes=[{"host_id": h, "state": msg.HostCertState.SKIPPED.value} for h in skipped],
            deadline=moment + timedelta(seconds=timeout),
            finished=False,
        )
    )
    for target in install:
        uow.emit(
            msg.InstallCertificate(
                operation_id=operation.id,
                certificate_id=cert.id,
                alias=cert.alias,
                certificate=cert.pem,
            ),
            routing_key=msg.InstallCertificate.address(host_id=target),
        )
    for target in remove:
        uow.emit(
            msg.RemoveCertificate(
                operation_id=operation.id, certificate_id=cert.id, alias=cert.alias
            ),
            routing_key=msg.RemoveCertificate.address(host_id=target),
        )
    if operation.waiting_for:
        return DEFERRED
    return _finish(uow, operation, answer=False)


def record(
    uow: CertificateUnitOfWork,
    report: msg.HostCertReport,
    action: str,
    reason: str | None = None,
) -> None:
    """A host answered. Its placement changes even when the operation has timed out: the
    record follows what the host really did."""
    state = msg.HostCertState.FAILED if reason is not None else PLACED[action]
    cert = uow.certificates.get(report.certificate_id)
    if cert is not None:
        uow.certificates.place(cert, report.host_id, state.value, reason, now())
    operation = uow.operations.get(report.operation_id)
    if operation is None or operation.finished or report.host_id not in operation.waiting_for:
        return
    _settle(operation, report.host_id, state, reason)
    uow.after_commit(metrics.certificate_operations.labels(operation.kind, state.value).inc)
    if not operation.waiting_for:
        _finish(uow, operation)


def expire(uow: CertificateUnitOfWork, timeout: float) -> int:
    """Hosts that did not answer in time are FAILED; their operations are answered."""
    overdue = uow.operations.overdue(now())
    for operation in overdue:
        reason = f"no answer within {timeout:g} s"
        cert = uow.certificates.get(operation.certificate_id)
        for host_id in list(operation.waiting_for):
            _settle(operation, host_id, msg.HostCertState.FAILED, reason)
            uow.after_commit(metrics.certificate_operations.labels(operation.kind, "FAILED").inc)
            if cert is not None:
                uow.certificates.place(cert, host_id, msg.HostCertState.FAILED.value, reason, now())
                uow.emit(
                    msg.CertificateFailed(
                        operation_id=operation.id,
                        certificate_id=cert.id,
                        host_id=host_id,
                        alias=cert.alias,
                        reason=reason,
                    )
                )
        _finish(uow, operation)
    return len(overdue)


def _settle(
    operation: OperationRow, host_id: str, state: msg.HostCertState, reason: str | None
) -> None:
    operation.waiting_for = [h for h in operation.waiting_for if h != host_id]
    outcome = {"host_id": host_id, "state": state.value, "reason": reason}
    operation.outcomes = [*operation.outcomes, outcome]


def _finish(
    uow: CertificateUnitOfWork, operation: OperationRow, answer: bool = True
) -> msg.CertificateOutcome:
    operation.finished = True
    cert = uow.certificates.get(operation.certificate_id)
    assert cert is not None
    hosts = sorted(
        (msg.HostOutcome.model_validate(o) for o in operation.outcomes), key=lambda o: o.host_id
    )
    outcome = msg.CertificateOutcome(certificate=view(cert), hosts=hosts)
    if operation.kind == "upload":
        uow.emit(
            msg.CertificateUploaded(
                certificate=outcome.certificate, hosts=hosts, host_id=operation.host_id
            )
        )
    elif operation.kind == "revoke":
        uow.emit(
            msg.CertificateRevoked(
                certificate=outcome.certificate, hosts=hosts, host_id=operation.host_id
            )
        )
    elif operation.kind == "delete":
        uow.emit(msg.CertificateDeleted(certificate=outcome.certificate))
        uow.certificates.delete(cert)
    if answer and operation.reply_to:
        uow.reply(operation.reply_to, operation.correlation_id, Reply.success(outcome))
    return outcome

"""Carrying out what a step of an operation decided: store, publish, answer, count."""

from __future__ import annotations

from functools import partial

import structlog

from certificate.adapters.operations import Settled
from certificate.domain.operation import Progress
from certificate.uow import CertificateUnitOfWork
from directdl.contracts.certificate import HostCertState
from directdl.contracts.senders import CERTIFICATE
from directdl.runtime import metrics

log = structlog.get_logger(__name__)

# What a host answered, as `directdl_certificate_operations_total` labels its outcome.
_HOST_OUTCOMES = {
    HostCertState.UPLOADED: metrics.SUCCEEDED,
    HostCertState.REVOKED: metrics.SUCCEEDED,
    HostCertState.FAILED: metrics.FAILED,
    HostCertState.SKIPPED: metrics.SKIPPED,
}


def carry_out(uow: CertificateUnitOfWork, progress: Progress) -> None:
    """Store what a step of an operation changed; publish and answer what it decided."""
    if progress.operation is not None:
        op = progress.operation
        uow.operations.save(op)
        count(uow, [Settled(op.id, op.kind, op.certificate_id, o) for o in progress.settled])
    if progress.certificate is not None and progress.forget:
        uow.certificates.delete(progress.certificate.id)
    elif progress.certificate is not None:
        uow.certificates.save(progress.certificate)
    for message, routing_key in progress.sends:
        uow.emit(message, routing_key=routing_key)
    if progress.answer is not None:
        answer = progress.answer
        uow.reply(answer.reply_to, answer.correlation_id, answer.reply)


def count(uow: CertificateUnitOfWork, settled: list[Settled]) -> None:
    """Count and log each host's outcome once it is stored: once per host, as it answers (or
    fails to)."""
    for each in settled:
        outcome = _HOST_OUTCOMES[each.outcome.state]
        counter = metrics.certificate_operations.labels(
            CERTIFICATE, each.outcome.host_id, each.kind.value, outcome
        )
        uow.after_commit(counter.inc)
        uow.after_commit(partial(_log_settled, each))


def _log_settled(settled: Settled) -> None:
    host = settled.outcome
    fields = {"certificate_id": settled.certificate_id, "host_id": host.host_id}
    if host.state is HostCertState.FAILED:
        log.warning("cert.host_failed", kind=settled.kind.value, reason=host.reason, **fields)
    elif host.state is HostCertState.UPLOADED:
        log.info("cert.pushed", **fields)
    elif host.state is HostCertState.REVOKED:
        log.info("cert.removed", **fields)

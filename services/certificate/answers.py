"""What hosts answer, in batches, and the timer that fails those that do not answer in time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from certificate.adapters.answers_clock import AnswersClock
from certificate.domain import operation
from certificate.domain.operation import HostAnswer
from certificate.progress import carry_out, count
from certificate.uow import CertificateUnitOfWork
from directdl.contracts import certificate as msg
from directdl.contracts.certificate import HostCertState

Clock = Callable[[], datetime]
Seconds = Callable[[], float]

# What hosts answer, in batches. The broker vouches that each comes from the host it names.

_ANSWERED = {
    msg.CertificateInstalled: HostCertState.UPLOADED,
    msg.CertificateRemoved: HostCertState.REVOKED,
    msg.CertificateFailed: HostCertState.FAILED,
}


def host_answers(
    reports: list[msg.HostCertReport],
    uow: CertificateUnitOfWork,
    clock: Clock,
    answers_clock: AnswersClock,
) -> None:
    """Each answer goes into its host's row, a statement for the batch; an operation that has
    no host left to wait for ends, and is answered once, from those rows."""
    answers = [
        HostAnswer(
            r.operation_id,
            r.certificate_id,
            r.host_id,
            _ANSWERED[type(r)],
            r.reason if isinstance(r, msg.CertificateFailed) else None,
            r.answered_at,
        )
        for r in reports
    ]
    uow.certificates.place_answers(answers, clock())
    settled = uow.operations.record_answers(answers)
    count(uow, settled)
    touched = list(dict.fromkeys(s.operation_id for s in settled))
    waiting = uow.operations.waiting(touched)
    for operation_id in touched:
        if operation_id in waiting:
            continue
        done = uow.operations.get(operation_id)
        assert done is not None  # it was just answered
        carry_out(uow, operation.ended(done, uow.certificates.get(done.certificate_id)))
    answered_at = [a.answered_at for a in answers if a.answered_at is not None]
    uow.after_commit(partial(answers_clock.observe, answered_at))


def expire_late_answers(
    uow: CertificateUnitOfWork, clock: Clock, answers_clock: AnswersClock, host_timeout: Seconds
) -> None:
    """Hosts that did not answer in time are FAILED; their operations are answered. In time
    is judged by the answers read: one whose answer waits in the queue is not late."""
    judged_at = answers_clock.judge_at()
    if judged_at is None:
        return
    for overdue in uow.operations.overdue(judged_at):
        cert = uow.certificates.get(overdue.certificate_id)
        carry_out(uow, operation.expired(overdue, cert, clock(), host_timeout()))

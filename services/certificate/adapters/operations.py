"""The operations repository: an operation's row, and a row per host it asked."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, select, update
from sqlalchemy.orm import Session

from certificate.adapters.orm import OperationHostRow, OperationRow
from certificate.domain.operation import HostAnswer, Operation, OperationKind, Request
from directdl.contracts.certificate import HostCertState, HostOutcome
from directdl.runtime.upsert import Upsert

HOSTS = cast(Table, OperationHostRow.__table__)
# A host asked that has not answered yet; every other state is what it answered.
WAITING = "WAITING"
Answered = tuple[str, str | None]
"""A host's row: its state and reason."""
_HOST_STATES = Upsert(HOSTS, ("operation_id", "host_id"), ("state", "reason"))


@dataclass(frozen=True)
class Settled:
    """An answer an operation was waiting for, now recorded."""

    operation_id: str
    kind: OperationKind
    certificate_id: str
    outcome: HostOutcome


class OperationRepository:
    """A save writes only the hosts' rows that changed since they were read: ending an
    operation does not rewrite the thousand rows its answers wrote."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._read: dict[str, dict[str, Answered]] = {}

    def get(self, operation_id: str) -> Operation | None:
        """Locked until commit: answers recorded meanwhile, and the timer, wait for it, so the
        operation ends once."""
        self._lock(OperationRow.id == operation_id)
        row = self.session.get(OperationRow, operation_id)
        return self._operation(row) if row else None

    def overdue(self, now: datetime) -> list[Operation]:
        """Locked until commit, as `get` is: an answer arriving meanwhile waits, then finds
        the operation ended."""
        due = (OperationRow.finished.is_(False), OperationRow.deadline < now)
        self._lock(*due)
        return [self._operation(r) for r in self.session.scalars(select(OperationRow).where(*due))]

    def record_answers(self, answers: Sequence[HostAnswer]) -> list[Settled]:
        """Store the answers of a batch that an open operation awaits from that host about its
        certificate, in one statement; any other (late, a duplicate, for another operation)
        changes nothing. Of two answers of a host in one batch, the first counts."""
        asked = {a.operation_id for a in answers}
        self._lock(OperationRow.id.in_(asked))
        open_ops = {
            op_id: (OperationKind(kind), certificate_id)
            for op_id, kind, certificate_id in self.session.execute(
                select(OperationRow.id, OperationRow.kind, OperationRow.certificate_id).where(
                    OperationRow.id.in_(asked), OperationRow.finished.is_(False)
                )
            )
        }
        awaited = {
            (operation_id, host_id)
            for operation_id, host_id in self.session.execute(
                select(HOSTS.c.operation_id, HOSTS.c.host_id).where(
                    HOSTS.c.operation_id.in_(open_ops),
                    HOSTS.c.host_id.in_({a.host_id for a in answers}),
                    HOSTS.c.state == WAITING,
                )
            )
        }
        settled: dict[tuple[str, str], tuple[HostAnswer, Settled]] = {}
        for answer in answers:
            pair = (answer.operation_id, answer.host_id)
            if pair not in awaited or pair in settled:
                continue
            kind, certificate_id = open_ops[answer.operation_id]
            if answer.certificate_id != certificate_id:
                continue
            outcome = HostOutcome(host_id=answer.host_id, state=answer.state, reason=answer.reason)
            settled[pair] = (answer, Settled(answer.operation_id, kind, certificate_id, outcome))
        if settled:
            self.session.execute(_ANSWER, [_answer_row(a) for a, _ in settled.values()])
        return [s for _, s in settled.values()]

    def waiting(self, operation_ids: Iterable[str]) -> set[str]:
        """Of these operations, those with a host still to answer: one grouped query."""
        query = (
            select(HOSTS.c.operation_id)
            .where(HOSTS.c.operation_id.in_(set(operation_ids)), HOSTS.c.state == WAITING)
            .group_by(HOSTS.c.operation_id)
        )
        return set(self.session.scalars(query))

    def _lock(self, *where: ColumnElement[bool]) -> None:
        # A write, not SELECT ... FOR UPDATE: SQLite ignores that, and its driver reads outside
        # any transaction until the first write. The write takes SQLite's one writer lock, and
        # PostgreSQL's row locks, before the rows are read.
        touch = update(OperationRow).where(*where).values(finished=OperationRow.finished)
        self.session.execute(touch, execution_options={"synchronize_session": False})

    def save(self, operation: Operation) -> None:
        """The operation and each host's state: at its start, when it ends, when it expires;
        answers in between are stored by `record_answers`."""
        row = self.session.get(OperationRow, operation.id)
        if row is None:
            row = OperationRow(id=operation.id)
            self.session.add(row)
        request = operation.request
        row.kind = operation.kind.value
        row.certificate_id = operation.certificate_id
        row.host_id = request.host_id
        row.reply_to = request.reply_to
        row.correlation_id = request.correlation_id
        row.deadline = request.deadline
        row.finished = operation.finished
        self.session.flush()
        states = _states(operation)
        read = self._read.get(operation.id, {})
        rows = [
            {"operation_id": operation.id, "host_id": h, "state": state, "reason": reason}
            for h, (state, reason) in states.items()
            if read.get(h) != (state, reason)
        ]
        _HOST_STATES(self.session, rows)
        self._read[operation.id] = states

    def _operation(self, row: OperationRow) -> Operation:
        query = select(HOSTS).where(HOSTS.c.operation_id == row.id).order_by(HOSTS.c.host_id)
        hosts = self.session.execute(query).mappings().all()
        self._read[row.id] = {h["host_id"]: (h["state"], h["reason"]) for h in hosts}
        return Operation(
            id=row.id,
            kind=OperationKind(row.kind),
            certificate_id=row.certificate_id,
            request=Request(row.deadline, row.host_id, row.reply_to, row.correlation_id),
            waiting_for=tuple(h["host_id"] for h in hosts if h["state"] == WAITING),
            outcomes=tuple(
                HostOutcome(
                    host_id=h["host_id"], state=HostCertState(h["state"]), reason=h["reason"]
                )
                for h in hosts
                if h["state"] != WAITING
            ),
            finished=row.finished,
        )


def _states(operation: Operation) -> dict[str, Answered]:
    waiting: dict[str, Answered] = {h: (WAITING, None) for h in operation.waiting_for}
    return waiting | {o.host_id: (o.state.value, o.reason) for o in operation.outcomes}


# Guarded by WAITING again: what the timer settled first stays as it settled it.
_ANSWER = (
    update(HOSTS)
    .where(
        HOSTS.c.operation_id == bindparam("answered_operation"),
        HOSTS.c.host_id == bindparam("answered_host"),
        HOSTS.c.state == WAITING,
    )
    .values(
        state=bindparam("answered_state"),
        reason=bindparam("answered_reason"),
        answered_at=bindparam("answered_time"),
    )
)


def _answer_row(answer: HostAnswer) -> dict[str, object]:
    return {
        "answered_operation": answer.operation_id,
        "answered_host": answer.host_id,
        "answered_state": answer.state.value,
        "answered_reason": answer.reason,
        "answered_time": answer.answered_at,
    }

"""The gateway's unit of work."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from api.adapters.jobs import JobRepository
from api.adapters.keys import KeyRepository
from api.adapters.secrets_box import SecretBox
from directdl.runtime.uow import UnitOfWork


class ApiUnitOfWork(UnitOfWork):
    keys: KeyRepository
    jobs: JobRepository

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        super().__init__(sessions)
        self.box = box

    def _open(self, session: Session) -> None:
        self.keys = KeyRepository(session, self.box)
        self.jobs = JobRepository(session)

"""The certificate service's unit of work."""

from __future__ import annotations

from sqlalchemy.orm import Session

from certificate.adapters.hosts import HostRepository
from certificate.adapters.operations import OperationRepository
from certificate.adapters.repository import CertificateRepository
from directdl.runtime.uow import UnitOfWork


class CertificateUnitOfWork(UnitOfWork):
    certificates: CertificateRepository
    hosts: HostRepository
    operations: OperationRepository

    def _open(self, session: Session) -> None:
        self.certificates = CertificateRepository(session)
        self.hosts = HostRepository(session)
        self.operations = OperationRepository(session)

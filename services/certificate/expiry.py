"""The expiry watch: a certificate that expires silently breaks every HTTPS deploy."""

from __future__ import annotations

from datetime import timedelta

from certificate import fanout
from certificate.adapters.repository import view
from certificate.uow import CertificateUnitOfWork
from directdl.contracts.certificate import CertificateExpiring

# Warn again each day until the certificate is replaced, revoked or gone.
REPEAT = timedelta(days=1)


def warn_expiring(uow: CertificateUnitOfWork, warning_days: int) -> int:
    moment = fanout.now()
    warned = 0
    for cert in uow.certificates.expiring(moment + timedelta(days=warning_days)):
        if cert.expiry_warned_at is not None and moment - cert.expiry_warned_at < REPEAT:
            continue
        days_left = max(0, (cert.not_after - moment).days)
        uow.emit(CertificateExpiring(certificate=view(cert), days_left=days_left))
        cert.expiry_warned_at = moment
        warned += 1
    return warned

"""The certificate service's scrape-time gauges: how long each certificate has left."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import Metric
from sqlalchemy import select

from certificate.adapters.orm import CertificateRow
from directdl.runtime import metrics
from directdl.runtime.service import Service


def certificate_expiry(service: Service[Any]) -> list[Metric]:
    """Every certificate not revoked: a revoked one is never pushed again, so its expiry
    needs no one's attention."""
    columns = CertificateRow.id, CertificateRow.alias, CertificateRow.zone_id
    with service.sessions() as session:
        rows = session.execute(
            select(*columns, CertificateRow.not_after).where(CertificateRow.revoked.is_(False))
        ).all()
    now = datetime.now(UTC)
    name = service.definition.name
    return [
        metrics.certificate_expiry.family(
            ((name, cert_id, alias, zone), (not_after - now).total_seconds())
            for cert_id, alias, zone, not_after in rows
        )
    ]

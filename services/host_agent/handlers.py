"""Host agent handlers: accept a download (recorded, then acked), or answer from the pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from directdl.bus.processing import Route
from directdl.contracts import certificate as certs
from directdl.contracts import download as msg
from directdl.contracts.base import Message
from directdl.contracts.bounds import clip
from host_agent.truststore import TrustStore, TrustStoreError
from host_agent.uow import AgentUnitOfWork


@dataclass(frozen=True)
class Agent:
    host_id: str
    pool_id: str
    wake_runner: Callable[[], None]
    truststore: TrustStore


def download_template(
    cmd: msg.DownloadTemplate, uow: AgentUnitOfWork, agent: Agent
) -> msg.DownloadAccepted:
    pool_id = cmd.pool_id or agent.pool_id
    if pool_id != agent.pool_id:
        # Answered as an outcome event, as every download is: the deploy waits for one.
        reason = f"host {agent.host_id} has no pool {pool_id!r}; its pool is {agent.pool_id!r}"
        uow.emit(
            msg.DownloadFailed(
                job_id=cmd.job_id,
                deploy_id=cmd.deploy_id,
                template_id=cmd.template_id,
                host_id=agent.host_id,
                pool_id=pool_id,
                code=msg.DownloadFailure.NO_SUCH_POOL,
                message=reason,
            )
        )
        return msg.DownloadAccepted(job_id=cmd.job_id, state="FAILED")
    known = uow.jobs.get(cmd.job_id)
    if known is not None:
        return msg.DownloadAccepted(job_id=cmd.job_id, state=known.state)
    stored = uow.pool.get(cmd.template_id)
    if stored is not None and stored.satisfies(cmd.checksum) and stored.is_intact():
        uow.emit(
            msg.DownloadCompleted(
                job_id=cmd.job_id,
                deploy_id=cmd.deploy_id,
                template_id=cmd.template_id,
                host_id=agent.host_id,
                pool_id=pool_id,
                path=stored.path,
                size=stored.size,
                digest=stored.verified_digest,
                cached=True,
                duration_s=0.0,
            )
        )
        return msg.DownloadAccepted(job_id=cmd.job_id, state="CACHED")
    # Recorded now and acked with this transaction; a runner thread does the work, so a long
    # download never holds a message unacked (RabbitMQ's consumer_timeout is 30 minutes).
    uow.jobs.add(cmd.job_id, cmd.template_id, cmd.model_dump(mode="json"))
    uow.after_commit(agent.wake_runner)
    return msg.DownloadAccepted(job_id=cmd.job_id, state="QUEUED")


def install_certificate(
    cmd: certs.InstallCertificate, uow: AgentUnitOfWork, agent: Agent
) -> dict[str, str]:
    """Import into the trust store and report what really happened, read back from the file."""
    report = _report(cmd, agent)
    try:
        done = agent.truststore.install(cmd.alias, cmd.certificate)
    except TrustStoreError as err:
        uow.emit(certs.CertificateFailed(**report, reason=clip(str(err))))
        return {"outcome": "failed", "reason": clip(str(err))}
    uow.emit(
        certs.CertificateInstalled(
            **report, fingerprint_sha256=done.fingerprint, outcome=done.status
        )
    )
    return {"outcome": done.status, "fingerprint_sha256": done.fingerprint}


def remove_certificate(
    cmd: certs.RemoveCertificate, uow: AgentUnitOfWork, agent: Agent
) -> dict[str, str]:
    report = _report(cmd, agent)
    try:
        done = agent.truststore.remove(cmd.alias)
    except TrustStoreError as err:
        uow.emit(certs.CertificateFailed(**report, reason=clip(str(err))))
        return {"outcome": "failed", "reason": clip(str(err))}
    uow.emit(certs.CertificateRemoved(**report, outcome=done.status))
    return {"outcome": done.status}


def _report(
    cmd: certs.InstallCertificate | certs.RemoveCertificate, agent: Agent
) -> dict[str, str]:
    return {
        "operation_id": cmd.operation_id,
        "certificate_id": cmd.certificate_id,
        "host_id": agent.host_id,
        "alias": cmd.alias,
    }


def routes(agent: Agent) -> dict[str, Route]:
    def bound(model: type[Message], handler: Callable[..., Any]) -> tuple[str, Route]:
        return model.address(host_id=agent.host_id), Route(
            model, lambda cmd, uow: handler(cmd, uow, agent)
        )

    return dict(
        [
            bound(msg.DownloadTemplate, download_template),
            bound(certs.InstallCertificate, install_certificate),
            bound(certs.RemoveCertificate, remove_certificate),
        ]
    )

"""Host agent handlers: accept a download (recorded, then acked), or answer from the pool."""

from __future__ import annotations

from collections.abc import Callable

from directdl.bus.dispatch import Every, Handlers, On
from directdl.contracts import certificate as certs
from directdl.contracts import download as msg
from directdl.contracts.bounds import clip
from directdl.contracts.host import HostHeartbeat
from host_agent import heartbeat, jobs
from host_agent.truststore import TrustStore, TrustStoreError
from host_agent.uow import AgentUnitOfWork


def download_template(
    cmd: msg.DownloadTemplate,
    uow: AgentUnitOfWork,
    host_id: str,
    pool_id: str,
    wake_runner: Callable[[], None],
) -> msg.DownloadAccepted:
    wanted = cmd.pool_id or pool_id
    if wanted != pool_id:
        # Answered as an outcome event, as every download is: the deploy waits for one.
        reason = f"host {host_id} has no pool {wanted!r}; its pool is {pool_id!r}"
        uow.emit(
            msg.DownloadFailed(
                job_id=cmd.job_id,
                deploy_id=cmd.deploy_id,
                template_id=cmd.template_id,
                host_id=host_id,
                pool_id=wanted,
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
                host_id=host_id,
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
    uow.after_commit(wake_runner)
    return msg.DownloadAccepted(job_id=cmd.job_id, state="QUEUED")


def install_certificate(
    cmd: certs.InstallCertificate, uow: AgentUnitOfWork, host_id: str, truststore: TrustStore
) -> dict[str, str]:
    """Import into the trust store and report what really happened, read back from the file."""
    report = _report(cmd, host_id)
    try:
        done = truststore.install(cmd.alias, cmd.certificate)
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
    cmd: certs.RemoveCertificate, uow: AgentUnitOfWork, host_id: str, truststore: TrustStore
) -> dict[str, str]:
    report = _report(cmd, host_id)
    try:
        done = truststore.remove(cmd.alias)
    except TrustStoreError as err:
        uow.emit(certs.CertificateFailed(**report, reason=clip(str(err))))
        return {"outcome": "failed", "reason": clip(str(err))}
    uow.emit(certs.CertificateRemoved(**report, outcome=done.status))
    return {"outcome": done.status}


def _report(
    cmd: certs.InstallCertificate | certs.RemoveCertificate, host_id: str
) -> dict[str, str]:
    return {
        "operation_id": cmd.operation_id,
        "certificate_id": cmd.certificate_id,
        "host_id": host_id,
        "alias": cmd.alias,
    }


HANDLERS = Handlers(
    # Each addressed to this host: host.{host_id}.…, filled in with the agent's host_id.
    commands={
        msg.DownloadTemplate: On(
            download_template, emits=(msg.DownloadCompleted, msg.DownloadFailed)
        ),
        certs.InstallCertificate: On(
            install_certificate, emits=(certs.CertificateInstalled, certs.CertificateFailed)
        ),
        certs.RemoveCertificate: On(
            remove_certificate, emits=(certs.CertificateRemoved, certs.CertificateFailed)
        ),
    },
    timers={heartbeat.TIMER: Every("heartbeat_interval", heartbeat.beat, (HostHeartbeat,))},
    background={
        jobs.RESUME: (),
        jobs.CLAIM: (),
        jobs.PROGRESS: (msg.DownloadProgress,),
        jobs.SUCCEEDED: (msg.DownloadCompleted,),
        jobs.FAILED: (msg.DownloadFailed,),
        heartbeat.DOWN: (HostHeartbeat,),
    },
)
"""What a host agent does with each message, and what each handler, its heartbeat and its
download runner may publish."""

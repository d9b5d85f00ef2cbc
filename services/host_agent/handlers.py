"""Host agent handlers: accept, resume or cancel a download, keep the pool, and trust."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from directdl.bus.dispatch import Every, Handlers, On
from directdl.contracts import certificate as certs
from directdl.contracts import download as msg
from directdl.contracts import pool as cache_msg
from directdl.contracts.bounds import clip
from directdl.contracts.host import HostHeartbeat, HostInventory, RequestInventory
from directdl.contracts.settings import SettingsChanged
from directdl.contracts.template import TemplateDeleted
from directdl.runtime.announce import ANNOUNCE_HANDLERS
from directdl.settings_catalog import SETTINGS
from host_agent import cache, heartbeat, inventory, jobs, recovery
from host_agent.domain import JobState
from host_agent.download.sink import partial_name
from host_agent.inventory import SentInventory
from host_agent.truststore import TrustStore, TrustStoreError
from host_agent.uow import AgentUnitOfWork

log = structlog.get_logger(__name__)

CancelJob = Callable[..., None]
"""JobRunner.cancel: stop a running job (job_id, report=...)."""
# The global settings that are the pool's cache limits, by the CachePolicy field each sets.
CACHE_SETTINGS = {
    "directdl.pool.cache.max.bytes": "max_bytes",
    "directdl.pool.cache.max.age": "max_age_s",
}


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
    uow.cache_policy.save(cmd.cache)
    stored = uow.pool.get(cmd.template_id)
    if stored is not None and stored.satisfies(cmd.checksum) and stored.is_intact():
        uow.pool.touch(cmd.template_id)
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
                image_digest=stored.image_digest,
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


def cancel_download(
    cmd: msg.CancelDownload, uow: AgentUnitOfWork, pool: Path, cancel_job: CancelJob
) -> msg.DownloadAccepted:
    """Registration gave up on this job: it stops, and nothing of it stays in the pool. The
    deploy has moved on already, so nothing is reported."""
    return msg.DownloadAccepted(
        job_id=cmd.job_id, state=_cancel(uow, cmd.job_id, cmd.reason, pool, cancel_job, False)
    )


def resume_download(
    cmd: msg.ResumeDownload, uow: AgentUnitOfWork, wake_runner: Callable[[], None]
) -> msg.DownloadAccepted:
    """The deploy still waits for this held job: it queues again, to resume from its partial."""
    if uow.jobs.transition(cmd.job_id, {JobState.HELD}, JobState.QUEUED):
        uow.after_commit(wake_runner)
        return msg.DownloadAccepted(job_id=cmd.job_id, state=JobState.QUEUED)
    known = uow.jobs.get(cmd.job_id)
    return msg.DownloadAccepted(job_id=cmd.job_id, state=known.state if known else "UNKNOWN")


def evict_templates(
    cmd: cache_msg.EvictTemplates, uow: AgentUnitOfWork, host_id: str, pool_id: str
) -> None:
    if cmd.policy is not None:
        uow.cache_policy.save(cmd.policy)
    cache.remove(uow, cmd.template_ids, cmd.reason, host_id, pool_id)


def template_deleted(
    evt: TemplateDeleted,
    uow: AgentUnitOfWork,
    host_id: str,
    pool_id: str,
    pool: Path,
    cancel_job: CancelJob,
) -> None:
    """Its jobs stop, reported so that their deploys end, and its copy leaves the pool."""
    for row in uow.jobs.unfinished(evt.id):
        why = f"template {evt.id} was deleted"
        if _cancel(uow, row.job_id, why, pool, cancel_job, True) == JobState.CANCELLED:
            command = msg.DownloadTemplate.model_validate(row.command)
            uow.emit(
                msg.DownloadFailed(
                    job_id=row.job_id,
                    deploy_id=command.deploy_id,
                    template_id=row.template_id,
                    host_id=host_id,
                    pool_id=pool_id,
                    code=msg.DownloadFailure.CANCELLED,
                    message=why,
                )
            )
    cache.remove(uow, [evt.id], cache_msg.RemovalReason.DELETED, host_id, pool_id)


def cache_setting_changed(evt: SettingsChanged, uow: AgentUnitOfWork) -> None:
    """The pool's limits follow the two settings as soon as their owner changes them, not only
    with the next download (which carries them too)."""
    field = CACHE_SETTINGS.get(evt.name)
    if field is None or evt.owner != SETTINGS[evt.name].owner:
        return
    current = uow.cache_policy.get().model_dump()
    uow.cache_policy.save(cache_msg.CachePolicy.model_validate(current | {field: evt.value}))


def _cancel(
    uow: AgentUnitOfWork,
    job_id: str,
    reason: str,
    pool: Path,
    cancel_job: CancelJob,
    report: bool,
) -> str:
    """The job's state once cancelled: a waiting one at once (its partial removed after the
    commit), a running one by its worker at the next chunk; an ended one stays as it is."""
    row = uow.jobs.get(job_id)
    if row is None:
        return "UNKNOWN"
    if uow.jobs.transition(job_id, {JobState.QUEUED, JobState.HELD}, JobState.CANCELLED):
        uow.jobs.set_state(job_id, JobState.CANCELLED, msg.DownloadFailure.CANCELLED, reason)
        partial = pool / partial_name(row.template_id, job_id)
        uow.after_commit(lambda: partial.unlink(missing_ok=True))
        return JobState.CANCELLED
    uow.session.refresh(row)
    if row.state == JobState.RUNNING:
        uow.after_commit(lambda: cancel_job(job_id, report=report))
        return "CANCELLING"
    return row.state


def request_inventory(
    cmd: RequestInventory,
    uow: AgentUnitOfWork,
    host_id: str,
    zone_id: str,
    cluster_id: str,
    pool_id: str,
    pool: Path,
    truststore: TrustStore,
    sent_inventory: SentInventory,
) -> None:
    """A service lacks this host's inventory: it goes out now, and the next beat carries its
    digest. One sent less than a second ago reached every service bound to it, so services
    asking together cost one inventory; a holding changed since goes with the next beat."""
    if sent_inventory.answered_lately():
        log.info("inventory.request_skipped", digest_seen=cmd.digest_seen)
        return
    held = inventory.holdings(uow, pool_id, pool, truststore)
    inventory.send(uow, held, sent_inventory, host_id, zone_id, cluster_id)


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
) -> dict[str, Any]:
    return {
        "operation_id": cmd.operation_id,
        "certificate_id": cmd.certificate_id,
        "host_id": host_id,
        "alias": cmd.alias,
        # The certificate service judges its deadline by when the host answered, not by when
        # it reads the answer, so a backlog of answers fails no host.
        "answered_at": datetime.now(UTC),
    }


HANDLERS = ANNOUNCE_HANDLERS | Handlers(
    # Each addressed to this host: host.{host_id}.…, filled in with the agent's host_id.
    commands={
        msg.DownloadTemplate: On(
            download_template, emits=(msg.DownloadCompleted, msg.DownloadFailed)
        ),
        msg.CancelDownload: On(cancel_download),
        msg.ResumeDownload: On(resume_download),
        # Asked again and again by design (a service that lost the inventory); no inbox row.
        RequestInventory: On(request_inventory, emits=(HostInventory,), idempotent=True),
        cache_msg.EvictTemplates: On(evict_templates, emits=(cache_msg.CopiesRemoved,)),
        certs.InstallCertificate: On(
            install_certificate, emits=(certs.CertificateInstalled, certs.CertificateFailed)
        ),
        certs.RemoveCertificate: On(
            remove_certificate, emits=(certs.CertificateRemoved, certs.CertificateFailed)
        ),
    },
    events={
        TemplateDeleted: On(template_deleted, emits=(msg.DownloadFailed, cache_msg.CopiesRemoved)),
        SettingsChanged: On(cache_setting_changed, idempotent=True),
    },
    timers={
        heartbeat.TIMER: Every(
            "heartbeat_interval", heartbeat.beat, (HostInventory, HostHeartbeat)
        ),
        cache.ENFORCE: Every("cache_interval", cache.enforce_on_timer, (cache_msg.CopiesRemoved,)),
    },
    background={
        recovery.RECOVER: (msg.DownloadsRecovered,),
        jobs.CLAIM: (),
        jobs.VALIDATOR: (),
        jobs.PROGRESS: (msg.DownloadProgress,),
        jobs.SUCCEEDED: (msg.DownloadCompleted,),
        jobs.FAILED: (msg.DownloadFailed,),
        cache.ENFORCE: (cache_msg.CopiesRemoved,),
        heartbeat.DOWN: (HostInventory, HostHeartbeat),
    },
)
"""What a host agent does with each message, and what each handler, its heartbeat and its
download runner may publish."""

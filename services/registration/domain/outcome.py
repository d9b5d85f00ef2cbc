"""Checks on what a host reports about a download: whose attempt it is, and what it copied."""

from __future__ import annotations

from dataclasses import dataclass

from directdl.contracts.checksum import Checksum, parse_checksum
from directdl.contracts.download import DownloadReport
from directdl.contracts.errors import InvalidMessage
from directdl.contracts.template import SourceProtocol
from registration.domain.deploy import Deploy
from registration.domain.source import parse_source
from registration.domain.template import Template


def refusal(report: DownloadReport, deploy: Deploy | None) -> str | None:
    """Why a report is not believed (a short reason, a metric label), or None when every field
    names the running attempt of `deploy`, the one whose attempt has the report's job id.
    A job id alone proves nothing: any host sees job ids go by."""
    attempt = deploy.attempt(report.job_id) if deploy is not None else None
    if deploy is None or attempt is None:
        return "unknown_attempt"
    pool_id = deploy.requested_pool_id  # None lets the host choose
    checks = (
        ("attempt_settled", attempt.running),
        ("wrong_deploy", report.deploy_id == deploy.deploy_id),
        ("wrong_template", report.template_id == deploy.template_id),
        ("wrong_host", report.host_id == attempt.host_id),
        ("wrong_pool", pool_id is None or report.pool_id == pool_id),
    )
    return next((reason for reason, passed in checks if not passed), None)


@dataclass(frozen=True)
class Copy:
    """What a completion says is now on the pool."""

    size: int
    digest: Checksum


def reported_copy(size: int, digest: str) -> Copy | str:
    """The reported copy, or why its digest cannot be one."""
    try:
        return Copy(size, parse_checksum(digest))
    except InvalidMessage as err:
        return f"the reported digest is not {{ALGO}}hex: {err.message}"


def size_problem(template: Template, copy: Copy) -> str | None:
    """A size that differs from the one the source gave at registration. Only an uncompressed
    file can be compared: a compressed one is stored decompressed, and a metalink's file is
    named (and maybe compressed) inside the document."""
    if template.size is None or template.protocol is SourceProtocol.METALINK:
        return None
    if parse_source(template.url, template.format).compression is not None:
        return None
    if copy.size == template.size:
        return None
    return f"the reported size {copy.size} is not the template's {template.size} bytes"


def digest_problem(expected: Checksum, copy: Copy, whose: str) -> str | None:
    """Algorithm and hex are both compared (normalised): a digest in another algorithm than the
    one asked for proves nothing about the bytes."""
    if copy.digest == expected:
        return None
    return f"the reported digest {copy.digest} is not {whose} {expected}"

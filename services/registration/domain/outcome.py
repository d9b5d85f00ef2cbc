"""Checks on what a host reports about a download: whose attempt it is, and what it copied."""

from __future__ import annotations

from dataclasses import dataclass

from directdl.contracts.checksum import Checksum, parse_checksum
from directdl.contracts.download import DownloadReport
from directdl.contracts.errors import InvalidMessage
from directdl.contracts.template import Protocol
from registration.domain.source import parse_source
from registration.domain.template import Template


@dataclass(frozen=True)
class Awaited:
    """The attempt a deploy is waiting for, as registration started it."""

    job_id: str
    deploy_id: str
    template_id: str
    host_id: str
    pool_id: str | None  # the pool the deploy asked for; None lets the host choose
    running: bool


def refusal(report: DownloadReport, awaited: Awaited | None) -> str | None:
    """Why a report is not believed (a short reason, a metric label), or None when every field
    names the running attempt. A job id alone proves nothing: any host sees job ids go by."""
    if awaited is None:
        return "unknown_attempt"
    checks = (
        ("attempt_settled", awaited.running),
        ("wrong_deploy", report.deploy_id == awaited.deploy_id),
        ("wrong_template", report.template_id == awaited.template_id),
        ("wrong_host", report.host_id == awaited.host_id),
        ("wrong_pool", awaited.pool_id is None or report.pool_id == awaited.pool_id),
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
    if template.size is None or template.protocol is Protocol.METALINK:
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

"""A download command and a PoolTransfer whose HTTP opener a test supplies, for transfer tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from directdl.contracts.download import DownloadTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat
from host_agent.download.core import Opener
from host_agent.download.protocols import OPENERS
from host_agent.transfer import PoolTransfer


def command(**fields: object) -> DownloadTemplate:
    """An HTTP download of a RAW template with fresh ids; `fields` override any of them."""
    return DownloadTemplate.model_validate(
        {
            "job_id": str(uuid.uuid4()),
            "deploy_id": str(uuid.uuid4()),
            "template_id": str(uuid.uuid4()),
            "url": "http://h.example/d.raw",
            "protocol": SourceProtocol.HTTP,
            "format": TemplateFormat.RAW,
            **fields,
        }
    )


def transfer(pool: Path, opener: Opener) -> PoolTransfer:
    """The agent's transfer into `pool`, its HTTP protocol opened by `opener`."""
    return PoolTransfer(pool, openers={**OPENERS, SourceProtocol.HTTP: opener})

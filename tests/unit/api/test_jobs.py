"""Async jobs: recorded before their command goes, ended once whoever learns of the end first,
and their deploy's events applied on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from api.adapters.job_desk import JobDesk
from api.adapters.secrets_box import SecretBox
from api.bootstrap import MIGRATIONS
from api.domain.jobs import OUTCOME, Job, JobStatus
from api.handlers import deploy_ended, deploy_progressed
from api.uow import ApiUnitOfWork
from directdl.contracts import deploy, download
from directdl.contracts.download import DownloadFailure
from directdl.runtime import db
from directdl.runtime.migrate import upgrade

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
JOB_ID = "0b9f7c2e-4d1a-4f7e-9a61-3c2d1e0f9a8b"


@pytest.fixture
def desk(tmp_path: Path) -> JobDesk:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(MIGRATIONS, url)
    unit_of_work = partial(
        ApiUnitOfWork, db.session_factory(db.make_engine(url)), SecretBox(SecretBox.new_key())
    )
    desk = JobDesk(unit_of_work, lambda: NOW)
    desk.record(Job(JOB_ID, "prepareTemplate", "template.deploy", b"{}", "key", NOW))
    return desk


def report(**fields: object) -> dict[str, object]:
    return {
        "job_id": "j-1",
        "deploy_id": JOB_ID,
        "template_id": "t-1",
        "host_id": "host-1",
        "pool_id": "pool-1",
    } | fields


def test_progress_only_rises_and_stops_short_of_done(desk: JobDesk) -> None:
    for done in (50, 20, 100):
        with desk.unit_of_work() as uow:
            event = download.DownloadProgress(
                **report(bytes_done=done, total=100, rate_bps=1.0)  # type: ignore[arg-type]
            )
            deploy_progressed(event, uow)
            uow.commit()
    job = desk.get(JOB_ID)
    assert job is not None and job.pending and job.progress == 99


def test_the_deploy_event_ends_the_job_once_and_a_later_end_changes_nothing(
    desk: JobDesk,
) -> None:
    failed = deploy.TemplateDeployFailed(
        deploy_id=JOB_ID,
        template_id="t-1",
        zone_id="zone-1",
        code=DownloadFailure.NOT_FOUND,
        message="404 from the source",
        attempts=[],
    )
    with desk.unit_of_work() as uow:
        deploy_ended(failed, uow, clock=lambda: NOW)
        uow.commit()
    ended = desk.get(JOB_ID)
    assert ended is not None and ended.status is JobStatus.FAILED and ended.result_code == 530
    assert "404 from the source" in (ended.error_text or "")

    later = desk.update(JOB_ID, lambda job: job.succeeded({OUTCOME: {}}, NOW))
    assert later is not None and desk.get(JOB_ID) == ended


def test_an_event_for_a_deploy_the_gateway_did_not_start_is_ignored(desk: JobDesk) -> None:
    other = deploy.TemplateDeployFailed(
        deploy_id="11111111-2222-4333-8444-555555555555",
        template_id="t-1",
        zone_id="zone-1",
        code=DownloadFailure.NOT_FOUND,
        message="x",
        attempts=[],
    )
    with desk.unit_of_work() as uow:
        deploy_ended(other, uow, clock=lambda: NOW)
        uow.commit()
    job = desk.get(JOB_ID)
    assert job is not None and job.pending

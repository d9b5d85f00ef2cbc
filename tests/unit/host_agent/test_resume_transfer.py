"""PoolTransfer with a job's Resume: the partial continued, clean re-downloads, kept on stop."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl_testing.transfers import command, transfer
from host_agent.download.core import (
    DownloadRequest,
    Opened,
    Opener,
    Resume,
    Sink,
    TerminalError,
)
from host_agent.download.sink import partial_name

pytestmark = pytest.mark.unit

DATA = bytes(range(256)) * 4000 + b"tail"  # 1 MB, not a round number
CUT = 300_001


def sha256(data: bytes) -> str:
    return "{SHA-256}" + hashlib.sha256(data).hexdigest()


def never() -> bool:
    return False


def ignore(done: int, total: int | None) -> None:
    pass


class Continues:
    """A Fetcher that writes the file from `sink.offset` on, as a resuming protocol does; it
    stops with CANCELLED after `stop_at` bytes when that is given."""

    def __init__(self, data: bytes, seen: list[tuple[Resume, int]], resume: Resume) -> None:
        self.data = data
        self.seen = seen
        self.resume = resume
        self.stop_at: int | None = None

    def fetch(self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]) -> None:
        self.seen.append((self.resume, sink.offset))
        end = len(self.data) if self.stop_at is None else self.stop_at
        sink.write(self.data[sink.offset : end])
        if end < len(self.data):
            raise TerminalError(DownloadFailure.CANCELLED, f"stopped at byte {end}")


def continuing(
    data: bytes, seen: list[tuple[Resume, int]], name: str = "d.raw", stop_at: int | None = None
) -> Opener:
    def fetcher(resume: Resume) -> Continues:
        made = Continues(data, seen, resume)
        made.stop_at = stop_at
        return made

    def open_source(request: DownloadRequest, cancelled: Callable[[], bool], n: int) -> Opened:
        return Opened(name=name, fetcher=fetcher)

    return open_source


def partial_of(pool: Path, cmd: DownloadTemplate) -> Path:
    return pool / partial_name(cmd.template_id, cmd.job_id)


def test_the_first_download_continues_the_partial_with_the_jobs_resume(tmp_path: Path) -> None:
    cmd, seen = command(checksum=sha256(DATA)), list[tuple[Resume, int]]()
    partial_of(tmp_path, cmd).write_bytes(DATA[:CUT])
    resume = Resume(validator='"v1"')
    with capture_logs() as logs:
        done = transfer(tmp_path, continuing(DATA, seen))(cmd, ignore, never, resume)
    assert seen == [(resume, CUT)]
    assert (done.digest, done.verified_digest, done.image_digest) == (sha256(DATA),) * 3
    assert Path(done.path).read_bytes() == DATA
    assert [p.name for p in tmp_path.iterdir()] == [cmd.template_id]
    resumed = [entry for entry in logs if entry["event"] == "transfer.resumed"]
    assert [entry["kept"] for entry in resumed] == [CUT]


def test_a_mismatch_after_resuming_downloads_again_from_zero_without_the_validator(
    tmp_path: Path,
) -> None:
    cmd, seen, learnt = command(checksum=sha256(DATA)), list[tuple[Resume, int]](), list[object]()
    partial_of(tmp_path, cmd).write_bytes(b"X" * CUT)  # bytes of another version
    stopping = never
    resume = Resume(validator='"old"', remember=learnt.append, stopping=stopping)
    done = transfer(tmp_path, continuing(DATA, seen))(cmd, ignore, never, resume)
    assert [offset for _, offset in seen] == [CUT, 0]
    again = seen[1][0]
    assert again.validator is None
    assert (again.remember, again.stopping) == (learnt.append, stopping)
    assert learnt == [None]  # the stored validator no longer describes the emptied file
    assert done.digest == sha256(DATA) and Path(done.path).read_bytes() == DATA


def test_a_failure_while_stopping_keeps_the_partial(tmp_path: Path) -> None:
    cmd, seen = command(), list[tuple[Resume, int]]()
    with pytest.raises(TerminalError) as caught:
        transfer(tmp_path, continuing(DATA, seen, stop_at=CUT))(
            cmd, ignore, never, Resume(stopping=lambda: True)
        )
    assert caught.value.code is DownloadFailure.CANCELLED
    assert partial_of(tmp_path, cmd).read_bytes() == DATA[:CUT]

    done = transfer(tmp_path, continuing(DATA, seen))(cmd, ignore, never, Resume(validator='"v1"'))
    assert [offset for _, offset in seen] == [0, CUT]
    assert done.digest == sha256(DATA)


def test_a_failure_when_not_stopping_removes_the_partial(tmp_path: Path) -> None:
    cmd = command()
    partial_of(tmp_path, cmd).write_bytes(DATA[:1000])
    with pytest.raises(TerminalError):
        transfer(tmp_path, continuing(DATA, [], stop_at=CUT))(cmd, ignore, never, Resume())
    assert list(tmp_path.iterdir()) == []


def test_without_a_validator_an_http_partial_is_dropped_unread(tmp_path: Path) -> None:
    cmd, seen = command(), list[tuple[Resume, int]]()
    partial_of(tmp_path, cmd).write_bytes(DATA[:CUT])
    # The three-argument call: no Resume, so nothing says which version those bytes are of.
    done = transfer(tmp_path, continuing(DATA, seen))(cmd, ignore, never)
    assert [offset for _, offset in seen] == [0]
    assert seen[0][0] == Resume()
    assert done.digest == sha256(DATA)


def test_a_compressed_template_reports_both_digests(tmp_path: Path) -> None:
    packed = gzip.compress(DATA)
    cmd, seen = command(checksum=sha256(packed)), list[tuple[Resume, int]]()
    partial_of(tmp_path, cmd).write_bytes(DATA[:CUT])  # decompressed: cannot be continued
    done = transfer(tmp_path, continuing(packed, seen, name="d.raw.gz"))(
        cmd, ignore, never, Resume(validator='"v1"')
    )
    assert [offset for _, offset in seen] == [0]
    assert done.digest == done.verified_digest == sha256(packed)
    assert done.image_digest == sha256(DATA) != done.digest
    assert Path(done.path).read_bytes() == DATA

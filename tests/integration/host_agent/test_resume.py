"""A job's partial file outlives the agent (SIGKILL, a clean stop): PoolTransfer against a real
nginx fetches only the rest, and starts again when the source changed or cannot be trusted."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl_testing.ganesha import Ganesha
from directdl_testing.metalinks import write_meta4
from directdl_testing.nginx import AccessLogEntry, Nginx
from directdl_testing.waiting import wait_until
from host_agent.download.core import DownloadError, Resume
from host_agent.download.sink import partial_name
from host_agent.jobs import Transferred
from host_agent.transfer import PoolTransfer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
DATA = os.urandom(8 * MiB + 12345)
NAME = "disk.raw"
CUT = 3 * MiB + 777  # what an earlier process left: not a whole number of chunks
SLOW_RATE = "8m"  # /slow/: about a second for DATA, so a kill lands half-way


def sha256(data: bytes) -> str:
    return "{SHA-256}" + hashlib.sha256(data).hexdigest()


def never() -> bool:
    return False


def ignore(done: int, total: int | None) -> None:
    pass


def command(
    url: str, protocol: SourceProtocol = SourceProtocol.HTTP, **fields: Any
) -> DownloadTemplate:
    fields.setdefault("format", TemplateFormat.RAW)
    return DownloadTemplate(
        job_id=str(uuid.uuid4()),
        deploy_id=str(uuid.uuid4()),
        template_id=str(uuid.uuid4()),
        url=url,
        protocol=protocol,
        **fields,
    )


def partial_of(pool: Path, cmd: DownloadTemplate) -> Path:
    return pool / partial_name(cmd.template_id, cmd.job_id)


def etag_of(url: str) -> str:
    return requests.head(url, timeout=5).headers["ETag"]


def requests_for(nginx: Nginx, uri: str, count: int = 1) -> list[AccessLogEntry]:
    """The logged GETs of `uri` once there are `count` (nginx logs after the response)."""

    def logged() -> list[AccessLogEntry]:
        entries = [e for e in nginx.access_log_lines() if e.uri == uri and e.method == "GET"]
        return entries if len(entries) >= count else []

    return wait_until(logged, what=f"{count} requests for {uri} in nginx's access log")


def stored(pool: Path, cmd: DownloadTemplate, data: bytes, resume: Resume) -> Transferred:
    """Run the transfer; the pool then holds exactly the final file, with `data` in it."""
    done = PoolTransfer(pool)(cmd, ignore, never, resume)
    assert os.listdir(pool) == [cmd.template_id]
    assert Path(done.path).read_bytes() == data
    return done


class Remembered:
    """A Resume's `remember`: each validator, with the partial's size on disk when told."""

    def __init__(self, partial: Path) -> None:
        self.partial = partial
        self.calls: list[tuple[str | None, int]] = []

    def __call__(self, validator: str | None) -> None:
        self.calls.append((validator, self.partial.stat().st_size))


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "pool"
    path.mkdir()
    return path


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate=SLOW_RATE) as server:
        server.add_file(NAME, DATA)
        yield server


# 1. HTTP: the rest only, under If-Range.


def test_a_partial_with_its_etag_fetches_only_the_rest(nginx: Nginx, pool: Path) -> None:
    url = f"{nginx.http_url}/{NAME}"
    cmd = command(url, checksum=sha256(DATA))
    partial = partial_of(pool, cmd)
    partial.write_bytes(DATA[:CUT])
    remembered = Remembered(partial)

    done = stored(pool, cmd, DATA, Resume(validator=etag_of(url), remember=remembered))

    [entry] = requests_for(nginx, f"/{NAME}")
    assert (entry.status, entry.range, entry.if_range) == (206, f"bytes={CUT}-", etag_of(url))
    assert entry.body_bytes_sent == len(DATA) - CUT
    assert done.digest == done.verified_digest == done.image_digest == sha256(DATA)
    assert remembered.calls == []  # the stored validator still describes the partial


def test_a_changed_source_starts_over_and_still_verifies(nginx: Nginx, pool: Path) -> None:
    url = f"{nginx.http_url}/{NAME}"
    old_etag = etag_of(url)
    new = os.urandom(len(DATA) - 1000)
    path = nginx.add_file(NAME, new)
    later = time.time() + 10
    os.utime(path, (later, later))  # a new mtime, so a new ETag
    cmd = command(url, checksum=sha256(new))
    partial = partial_of(pool, cmd)
    partial.write_bytes(DATA[:CUT])
    remembered = Remembered(partial)

    done = stored(pool, cmd, new, Resume(validator=old_etag, remember=remembered))

    [entry] = requests_for(nginx, f"/{NAME}")
    assert (entry.status, entry.range, entry.if_range) == (200, f"bytes={CUT}-", old_etag)
    assert entry.body_bytes_sent == len(new)
    assert done.verified_digest == sha256(new)
    new_etag = etag_of(url)
    assert new_etag != old_etag
    assert remembered.calls == [(new_etag, 0)]  # told once the old bytes were gone


def test_a_partial_without_a_stored_validator_is_not_trusted(nginx: Nginx, pool: Path) -> None:
    url = f"{nginx.http_url}/{NAME}"
    cmd = command(url)
    partial = partial_of(pool, cmd)
    partial.write_bytes(b"\xff" * CUT)
    remembered = Remembered(partial)

    done = stored(pool, cmd, DATA, Resume(remember=remembered))

    [entry] = requests_for(nginx, f"/{NAME}")
    assert (entry.status, entry.range, entry.body_bytes_sent) == (200, "", len(DATA))
    assert done.digest == sha256(DATA)
    assert remembered.calls == [(etag_of(url), 0)]


def test_a_partial_that_is_already_whole_needs_no_body(nginx: Nginx, pool: Path) -> None:
    url = f"{nginx.http_url}/{NAME}"
    cmd = command(url, checksum=sha256(DATA))
    partial_of(pool, cmd).write_bytes(DATA)  # killed between the last byte and the rename

    done = stored(pool, cmd, DATA, Resume(validator=etag_of(url)))

    [entry] = requests_for(nginx, f"/{NAME}")
    assert (entry.status, entry.range) == (416, f"bytes={len(DATA)}-")
    assert done.verified_digest == sha256(DATA) and done.size == len(DATA)


def test_a_compressed_partial_is_downloaded_again_and_both_digests_are_given(
    nginx: Nginx, pool: Path
) -> None:
    packed = gzip.compress(DATA, compresslevel=1)
    nginx.add_file("disk.raw.gz", packed)
    url = f"{nginx.http_url}/disk.raw.gz"
    cmd = command(url, checksum=sha256(packed))
    partial_of(pool, cmd).write_bytes(DATA[:CUT])  # decompressed bytes

    done = stored(pool, cmd, DATA, Resume(validator=etag_of(url)))

    [entry] = requests_for(nginx, "/disk.raw.gz")
    assert (entry.status, entry.range, entry.body_bytes_sent) == (200, "", len(packed))
    assert done.digest == done.verified_digest == sha256(packed)
    assert done.image_digest == sha256(DATA) != done.digest


# 2. The partial survives the agent: a clean stop keeps it, and so does SIGKILL.


def test_a_clean_stop_keeps_the_partial_and_the_next_start_continues_it(
    nginx: Nginx, pool: Path
) -> None:
    url = f"{nginx.http_url}/slow/{NAME}"
    cmd = command(url, checksum=sha256(DATA))
    partial = partial_of(pool, cmd)
    remembered = Remembered(partial)
    received = [0]

    def progress(done: int, total: int | None) -> None:
        received[0] = done

    def stopping() -> bool:
        return received[0] >= MiB

    with pytest.raises(DownloadError) as caught:
        PoolTransfer(pool)(cmd, progress, stopping, Resume(remember=remembered, stopping=stopping))
    assert caught.value.code is DownloadFailure.CANCELLED
    kept = partial.stat().st_size
    assert MiB <= kept < len(DATA) and partial.read_bytes() == DATA[:kept]
    assert remembered.calls == [(etag_of(url), 0)]

    done = stored(pool, cmd, DATA, Resume(validator=remembered.calls[-1][0]))

    entries = requests_for(nginx, f"/slow/{NAME}", count=2)
    assert (entries[1].status, entries[1].range) == (206, f"bytes={kept}-")
    assert entries[1].body_bytes_sent == len(DATA) - kept
    assert done.verified_digest == sha256(DATA)


AGENT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from directdl.contracts.download import DownloadTemplate
    from host_agent.download.core import Resume
    from host_agent.transfer import PoolTransfer

    url, pool, template_id, job_id, stored = sys.argv[1:]

    def remember(validator):
        Path(stored + ".new").write_text(validator or "")
        os.replace(stored + ".new", stored)

    cmd = DownloadTemplate(
        job_id=job_id, deploy_id=job_id, template_id=template_id, url=url,
        protocol="http", format="RAW",
    )
    PoolTransfer(Path(pool))(cmd, lambda *_: None, lambda: False, Resume(remember=remember))
    """
)


def test_a_download_resumes_after_the_agent_is_sigkilled(
    nginx: Nginx, pool: Path, tmp_path: Path
) -> None:
    url = f"{nginx.http_url}/slow/{NAME}"
    cmd = command(url)
    partial, validator = partial_of(pool, cmd), tmp_path / "validator"
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, url, str(pool), cmd.template_id, cmd.job_id, str(validator)]
    )
    try:
        wait_until(
            lambda: partial.exists() and partial.stat().st_size >= MiB,
            what="the agent to have written 1 MiB",
        )
    finally:
        agent.send_signal(signal.SIGKILL)
        status = agent.wait(10)
    assert status == -signal.SIGKILL
    kept = partial.stat().st_size
    assert MiB <= kept < len(DATA) and partial.read_bytes() == DATA[:kept]
    assert validator.read_text() == etag_of(url)

    done = stored(pool, cmd, DATA, Resume(validator=validator.read_text()))

    resumed = [e for e in requests_for(nginx, f"/slow/{NAME}", count=2) if e.range]
    assert [(e.status, e.range, e.if_range) for e in resumed] == [
        (206, f"bytes={kept}-", etag_of(url))
    ]
    assert resumed[0].body_bytes_sent == len(DATA) - kept
    assert done.digest == sha256(DATA)


# 3. Metalink: continued from the partial without a validator; the metalink's hash guards.


def metalink_command(nginx: Nginx, hashes: dict[str, str]) -> DownloadTemplate:
    document = write_meta4(NAME, len(DATA), hashes, [(f"{nginx.http_url}/{NAME}", 1)])
    nginx.add_file("t.meta4", document)
    return command(f"{nginx.http_url}/t.meta4", SourceProtocol.METALINK)


def test_a_metalink_download_continues_from_the_partial(nginx: Nginx, pool: Path) -> None:
    cmd = metalink_command(nginx, {"SHA-256": sha256(DATA).removeprefix("{SHA-256}")})
    partial_of(pool, cmd).write_bytes(DATA[:CUT])

    done = stored(pool, cmd, DATA, Resume())

    [entry] = requests_for(nginx, f"/{NAME}")
    assert (entry.status, entry.range, entry.if_range) == (206, f"bytes={CUT}-", "")
    assert entry.body_bytes_sent == len(DATA) - CUT
    assert done.verified_digest == sha256(DATA)


def test_a_metalink_partial_of_other_bytes_fails_the_hash_then_downloads_clean(
    nginx: Nginx, pool: Path
) -> None:
    cmd = metalink_command(nginx, {"SHA-256": sha256(DATA).removeprefix("{SHA-256}")})
    partial_of(pool, cmd).write_bytes(os.urandom(CUT))  # an older version of the file

    done = stored(pool, cmd, DATA, Resume())

    entries = requests_for(nginx, f"/{NAME}", count=2)
    assert [(e.status, e.range, e.body_bytes_sent) for e in entries] == [
        (206, f"bytes={CUT}-", len(DATA) - CUT),
        (200, "", len(DATA)),
    ]
    assert done.verified_digest == sha256(DATA)


def test_a_metalink_without_a_hash_does_not_trust_the_partial(nginx: Nginx, pool: Path) -> None:
    cmd = metalink_command(nginx, {})
    partial_of(pool, cmd).write_bytes(DATA[:CUT])

    done = stored(pool, cmd, DATA, Resume())

    [entry] = requests_for(nginx, f"/{NAME}")
    assert (entry.status, entry.range, entry.body_bytes_sent) == (200, "", len(DATA))
    assert done.digest == sha256(DATA)


# 4. NFS: nfs-cat cannot start at an offset (services/host_agent/download/nfs.py says why).


def test_an_nfs_partial_is_read_again_from_byte_zero(pool: Path) -> None:
    with Ganesha() as server:
        (server.export_dir / NAME).write_bytes(DATA)
        cmd = command(
            server.url_for(NAME), SourceProtocol.NFS, checksum=sha256(DATA), checksum_attempts=1
        )
        partial_of(pool, cmd).write_bytes(b"\xff" * CUT)  # continued, it would fail the hash

        done = stored(pool, cmd, DATA, Resume(validator="ignored"))

    assert done.verified_digest == sha256(DATA)

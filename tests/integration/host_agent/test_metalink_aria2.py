"""aria2c as the reference metalink client: the bytes and the verdict our fetcher must match."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from directdl.metalink import parse_metalink
from directdl_testing.metalinks import write_meta4, write_metalink_v3

pytestmark = pytest.mark.integration

NAME = "tiny.qcow2"
SIZE = 3 * 1024 * 1024 + 7
ARIA2C_TIMEOUT_S = 60


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes]]:
    """(URL, bytes) of a file served by http.server on 127.0.0.1."""
    root = tmp_path_factory.mktemp("www")
    data = os.urandom(SIZE)
    (root / NAME).write_bytes(data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{NAME}", data
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def dead_url() -> str:
    """A URL on a port nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{NAME}"


def aria2c(metalink: bytes, tmp_path: Path, suffix: str) -> tuple[int, str, Path]:
    if shutil.which("aria2c") is None:
        pytest.fail("aria2c not found; install it with: apt-get install -y aria2", pytrace=False)
    document = tmp_path / f"t.{suffix}"
    document.write_bytes(metalink)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            "aria2c", "-M", str(document), "-d", str(out),
            "--summary-interval=0", "--enable-color=false", "--allow-overwrite=true",
        ],
        capture_output=True, text=True, timeout=ARIA2C_TIMEOUT_S, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, out / NAME


Writer = Callable[..., bytes]
VERSIONS = [
    # (writer, file suffix, dead mirror's rank, live mirror's rank): the dead one is preferred.
    pytest.param(write_meta4, "meta4", 1, 2, id="v4"),
    pytest.param(write_metalink_v3, "metalink", 100, 50, id="v3"),
]


@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_fails_over_to_the_next_mirror(
    served: tuple[str, bytes],
    dead_url: str,
    tmp_path: Path,
    write: Writer,
    suffix: str,
    dead_rank: int,
    live_rank: int,
) -> None:
    url, data = served
    sha256 = hashlib.sha256(data).hexdigest()
    document = write(NAME, SIZE, {"SHA-256": sha256}, [(url, live_rank), (dead_url, dead_rank)])

    status, output, target = aria2c(document, tmp_path, suffix)

    assert status == 0, output
    assert f"Download aborted. URI={dead_url}" in output  # it did try the dead one
    assert target.read_bytes() == data
    # Our parser reads the same document the same way: dead mirror first, then the live one.
    metalink = parse_metalink(document)
    assert metalink.mirrors == [dead_url, url]
    assert (metalink.name, metalink.size) == (NAME, SIZE)
    assert metalink.strongest_hash() == ("SHA-256", sha256)


@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_a_wrong_hash_exits_32(
    served: tuple[str, bytes],
    dead_url: str,
    tmp_path: Path,
    write: Writer,
    suffix: str,
    dead_rank: int,
    live_rank: int,
) -> None:
    url, data = served
    wrong = hashlib.sha256(data + b"!").hexdigest()
    document = write(NAME, SIZE, {"SHA-256": wrong}, [(dead_url, dead_rank), (url, live_rank)])

    status, output, _ = aria2c(document, tmp_path, suffix)

    assert status == 32, output
    assert "Checksum error detected" in output
    assert parse_metalink(document).strongest_hash() == ("SHA-256", wrong)

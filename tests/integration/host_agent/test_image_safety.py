"""Image safety on real images from `qemu-img create`: the CVE-2024-50386 checks, streamed."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import TemplateFormat
from host_agent.download.core import TerminalError
from host_agent.download.image import ImageInspector, check_image
from host_agent.download.sink import FileSink

pytestmark = pytest.mark.integration

QCOW2, RAW, ISO = TemplateFormat.QCOW2, TemplateFormat.RAW, TemplateFormat.ISO
UNKNOWN_BIT = 1 << 8


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing: apt-get install qemu-utils", pytrace=False)
    folder = tmp_path_factory.mktemp("images")
    path = {name: folder / name for name in ("base.qcow2", "plain.qcow2", "v2.qcow2")}
    qemu_img("create", "-q", "-f", "qcow2", str(path["base.qcow2"]), "16M")
    qemu_img("create", "-q", "-f", "qcow2", str(path["plain.qcow2"]), "64M")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", str(path["v2.qcow2"]), "64M")
    for name, options in {
        "backed.qcow2": ["-b", "base.qcow2", "-F", "qcow2"],
        "backed-v2.qcow2": ["-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2"],
        "data-file.qcow2": ["-o", f"data_file={folder / 'data.raw'}", "64M"],
        "extended-l2.qcow2": ["-o", "extended_l2=on", "64M"],
    }.items():
        path[name] = folder / name
        qemu_img("create", "-q", "-f", "qcow2", str(path[name]), *options[:-1], options[-1])
    # Unknown incompatible feature: qemu itself refuses to open it; so must we.
    header = bytearray(path["plain.qcow2"].read_bytes())
    (features,) = struct.unpack_from(">Q", header, 72)
    struct.pack_into(">Q", header, 72, features | UNKNOWN_BIT)
    path["unknown-feature.qcow2"] = folder / "unknown-feature.qcow2"
    path["unknown-feature.qcow2"].write_bytes(header)
    rng = random.Random(50386)
    path["disk.raw"] = folder / "disk.raw"
    path["disk.raw"].write_bytes(rng.randbytes(3 << 20))
    path["random.iso"] = folder / "random.iso"
    path["random.iso"].write_bytes(rng.randbytes(1 << 20))
    return path


def stream(path: Path, first: int, then: int) -> Iterator[bytes]:
    """The file in `first`-byte chunks for its first 512 bytes, then in `then`-byte chunks."""
    data = path.read_bytes()
    for start in range(0, 512, first):
        yield data[start : min(start + first, 512)]
    for start in range(512, len(data), then):
        yield data[start : start + then]


def streamed_verdict(path: Path, fmt: TemplateFormat, first: int, then: int) -> str:
    inspector = ImageInspector(fmt, path.name)
    try:
        for chunk in stream(path, first, then):
            inspector.feed(chunk)
        inspector.verdict()
    except TerminalError as err:
        assert err.code is DownloadFailure.UNSAFE_IMAGE
        return err.message
    return "ok"


def whole_file_verdict(path: Path, fmt: TemplateFormat) -> str:
    try:
        check_image(path, fmt, path.name)
    except TerminalError as err:
        assert err.code is DownloadFailure.UNSAFE_IMAGE
        return err.message
    return "ok"


CASES = [
    ("plain.qcow2", QCOW2, "ok"),
    ("v2.qcow2", QCOW2, "ok"),
    ("base.qcow2", QCOW2, "ok"),
    ("backed.qcow2", QCOW2, "backed.qcow2: qcow2 has a backing file 'base.qcow2'"),
    ("backed-v2.qcow2", QCOW2, "backed-v2.qcow2: qcow2 has a backing file 'base.qcow2'"),
    ("data-file.qcow2", QCOW2, "data-file.qcow2: qcow2 has an external data file '{folder}'"),
    (
        "unknown-feature.qcow2",
        QCOW2,
        "unknown-feature.qcow2: unknown incompatible features 0x100"
        " (header field 0x0000000000000100)",
    ),
    # oslo knows incompatible bits 0-3; extended L2 entries (bit 4, qemu 5.2) count as unknown.
    (
        "extended-l2.qcow2",
        QCOW2,
        "extended-l2.qcow2: unknown incompatible features 0x10 (header field 0x0000000000000010)",
    ),
    (
        "disk.raw",
        QCOW2,
        "disk.raw: declares QCOW2 but the file is raw: not a qcow2 (bad magic {magic})",
    ),
    ("disk.raw", RAW, "ok"),
    ("random.iso", ISO, "ok"),
    (
        "backed.qcow2",
        RAW,
        "backed.qcow2: declares RAW but the file is qcow2, a format that can refer to other"
        " files; register it as QCOW2 to have it checked",
    ),
    ("plain.qcow2", ISO, "plain.qcow2: declares ISO but the file is qcow2,"),
]


def expected(images: dict[str, Path], name: str, text: str) -> str:
    return text.format(
        folder=images[name].parent / "data.raw", magic=images[name].read_bytes()[:4].hex()
    )


@pytest.mark.parametrize(("name", "fmt", "verdict"), CASES)
def test_whole_file_verdicts(
    images: dict[str, Path], name: str, fmt: TemplateFormat, verdict: str
) -> None:
    assert whole_file_verdict(images[name], fmt).startswith(expected(images, name, verdict))


@pytest.mark.parametrize(("first", "then"), [(1, 4096), (4096, 4096), (7, 1 << 20)])
@pytest.mark.parametrize(("name", "fmt", "verdict"), CASES)
def test_streamed_in_small_chunks_gives_the_same_verdict(
    images: dict[str, Path], name: str, fmt: TemplateFormat, verdict: str, first: int, then: int
) -> None:
    whole = whole_file_verdict(images[name], fmt)
    assert streamed_verdict(images[name], fmt, first, then) == whole


def test_the_fixtures_are_what_qemu_says_they_are(images: dict[str, Path]) -> None:
    info = json.loads(qemu_img("info", "--output=json", str(images["backed.qcow2"])))
    assert info["format"] == "qcow2" and info["backing-filename"] == "base.qcow2"
    command = ["qemu-img", "info", str(images["unknown-feature.qcow2"])]
    failed = subprocess.run(command, check=False, capture_output=True, text=True)
    assert failed.returncode != 0 and "feature" in failed.stderr.lower()


def through_sink(
    pool: Path, source: bytes, fmt: TemplateFormat, compression: str | None = None
) -> FileSink:
    sink = FileSink(pool, "tpl", "job", fmt, compression=compression, label="tpl")
    for start in range(0, len(source), 1 << 20):
        sink.write(source[start : start + (1 << 20)])
    sink.finish()
    return sink


def test_a_plain_qcow2_lands_usable(images: dict[str, Path], tmp_path: Path) -> None:
    sink = through_sink(tmp_path, images["plain.qcow2"].read_bytes(), QCOW2)
    sink.commit(tmp_path / "template.qcow2")
    qemu_img("check", str(tmp_path / "template.qcow2"))
    info = json.loads(qemu_img("info", "--output=json", str(tmp_path / "template.qcow2")))
    assert info["virtual-size"] == 64 << 20


def test_a_gzipped_qcow2_with_a_backing_file_is_refused_after_decompression(
    images: dict[str, Path], tmp_path: Path
) -> None:
    packed = gzip.compress(images["backed.qcow2"].read_bytes())
    with pytest.raises(TerminalError) as caught:
        through_sink(tmp_path, packed, QCOW2, compression="gz")
    assert caught.value.code is DownloadFailure.UNSAFE_IMAGE
    assert caught.value.message == "tpl: qcow2 has a backing file 'base.qcow2'"


def test_a_gzipped_plain_qcow2_passes(images: dict[str, Path], tmp_path: Path) -> None:
    original = images["plain.qcow2"].read_bytes()
    sink = through_sink(tmp_path, gzip.compress(original), QCOW2, compression="gz")
    sink.commit(tmp_path / "template.qcow2")
    assert (tmp_path / "template.qcow2").read_bytes() == original

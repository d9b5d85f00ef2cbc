"""HashBeside: hashes on a worker thread, in order, one chunk behind, errors passed back."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator

import pytest

from host_agent.download.hashing import HashBeside

pytestmark = pytest.mark.unit

WAIT_S = 5.0


@pytest.fixture
def beside() -> Iterator[HashBeside]:
    hashes = HashBeside({"sha256": hashlib.sha256, "md5": hashlib.md5})
    yield hashes
    hashes.close()


def test_the_digests_are_those_of_the_chunks_in_order(beside: HashBeside) -> None:
    rng = random.Random(3)
    chunks = [rng.randbytes(rng.choice([1, 100, 5000, 1 << 20])) for _ in range(40)]
    for chunk in chunks:
        beside.update(chunk)
    whole = b"".join(chunks)
    assert beside.hexdigests() == {
        "sha256": hashlib.sha256(whole).hexdigest(),
        "md5": hashlib.md5(whole).hexdigest(),
    }


class Gated:
    """A hash whose update blocks until the test opens the gate, noting the thread it ran on."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.threads: list[str] = []
        self.inner = hashlib.sha256()

    def update(self, data: bytes, /) -> None:
        self.threads.append(threading.current_thread().name)
        if not self.gate.wait(WAIT_S):
            raise AssertionError("the gate was never opened")
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


def test_update_returns_while_its_chunk_is_still_being_hashed() -> None:
    gated = Gated()
    hashes = HashBeside({"sha256": lambda: gated})
    try:
        returned = threading.Event()

        def caller() -> None:
            hashes.update(b"first")
            returned.set()

        thread = threading.Thread(target=caller)
        thread.start()
        # The worker is held at the gate, and update() has returned all the same.
        assert returned.wait(WAIT_S)
        gated.gate.set()
        thread.join(WAIT_S)
        hashes.update(b"second")
        assert hashes.hexdigests()["sha256"] == hashlib.sha256(b"firstsecond").hexdigest()
        assert gated.threads and all(name.startswith("hash") for name in gated.threads)
    finally:
        gated.gate.set()
        hashes.close()


def test_a_buffer_changed_after_update_does_not_change_the_digest(beside: HashBeside) -> None:
    buffer = bytearray(b"a" * 4096)
    beside.update(buffer)
    buffer[:] = b"b" * 4096  # as a caller reusing its read buffer would
    view = memoryview(bytearray(b"c" * 4096))
    beside.update(view)
    view[:] = b"d" * 4096
    expected = hashlib.sha256(b"a" * 4096 + b"c" * 4096).hexdigest()
    assert beside.hexdigests()["sha256"] == expected


def test_reset_starts_again_from_nothing(beside: HashBeside) -> None:
    beside.update(b"dropped")
    beside.reset()
    beside.update(b"kept")
    assert beside.hexdigests()["sha256"] == hashlib.sha256(b"kept").hexdigest()


class Broken:
    def update(self, data: bytes, /) -> None:
        raise MemoryError("no room for the hash state")

    def hexdigest(self) -> str:
        raise AssertionError("never reached")


def test_an_error_in_the_worker_comes_out_of_the_next_call() -> None:
    hashes = HashBeside({"broken": Broken})
    try:
        hashes.update(b"x")  # queued: the error is not known yet
        with pytest.raises(MemoryError, match="no room"):
            hashes.wait()
        hashes.wait()  # reported once, not again
    finally:
        hashes.close()


def test_close_finishes_the_chunk_in_flight_and_is_harmless_twice() -> None:
    gated = Gated()
    hashes = HashBeside({"sha256": lambda: gated})
    hashes.update(b"last")
    gated.gate.set()
    hashes.close()
    hashes.close()
    assert gated.hexdigest() == hashlib.sha256(b"last").hexdigest()

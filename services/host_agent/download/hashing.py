"""Hashes updated on a thread of their own, one chunk behind the caller, beside its writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class HashBeside:
    """`update(chunk)` returns at once; a worker thread feeds the chunk to every hash.

    hashlib lets go of the GIL for buffers above 2 KiB, so the worker hashes chunk N on one
    core while the caller writes chunk N and receives chunk N+1 on the other: a download then
    costs the longer of hashing and receive-plus-write, not their sum (bench/download.py).
    Each update first waits for the one before, so the hashes see the chunks in order and
    at most one chunk is in flight. A chunk that could change under the worker (a bytearray,
    a memoryview) is copied first; bytes, what every fetcher passes, never are.
    """

    def __init__(self, new: Mapping[str, Callable[[], _Hash]]) -> None:
        self._new = dict(new)
        self._hashes = {name: make() for name, make in self._new.items()}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hash")
        self._pending: Future[None] | None = None

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        frozen = chunk if isinstance(chunk, bytes) else bytes(chunk)
        self.wait()
        self._pending = self._worker.submit(self._update, frozen)

    def wait(self) -> None:
        """Return once every chunk passed so far is hashed; re-raise a hash's own error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def reset(self) -> None:
        """Forget everything hashed: the next chunk is the first again."""
        self.wait()
        self._hashes = {name: make() for name, make in self._new.items()}

    def hexdigests(self) -> dict[str, str]:
        self.wait()
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}

    def close(self) -> None:
        """Stop the worker; harmless twice. A chunk still in flight is finished first."""
        self._pending = None
        self._worker.shutdown(wait=True)

    def _update(self, chunk: bytes) -> None:
        for digest in self._hashes.values():
            digest.update(chunk)

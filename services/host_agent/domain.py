"""The agent's domain: job states and what a stored template file is; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class StoredFile:
    template_id: str
    pool_id: str
    path: str
    size: int
    digest: str  # {SHA-256}hex of the downloaded bytes
    verified_digest: str  # {ALGO}hex that matched the template's checksum

    def is_intact(self) -> bool:
        """The file is there with the size it was stored with. Re-hashing several GB on every
        deploy would cost more than the download it saves; a size check catches truncation."""
        path = Path(self.path)
        return path.is_file() and path.stat().st_size == self.size

    def satisfies(self, checksum: str | None) -> bool:
        """Stored bytes are the ones a deploy with this checksum wants."""
        if checksum is None:
            return True
        return checksum.lower() in (self.digest.lower(), self.verified_digest.lower())

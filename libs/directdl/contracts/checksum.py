"""Checksums in CloudStack's notation: {ALGO}hex, or bare hex whose length names the algorithm."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from directdl.contracts.errors import InvalidMessage

# Canonical name -> (hashlib name, hex digits in a digest).
ALGORITHMS: dict[str, tuple[str, int]] = {
    "MD5": ("md5", 32),
    "SHA-1": ("sha1", 40),
    "SHA-224": ("sha224", 56),
    "SHA-256": ("sha256", 64),
    "SHA-384": ("sha384", 96),
    "SHA-512": ("sha512", 128),
}

# Users write SHA256 as often as SHA-256; both mean the same algorithm.
_SPELLINGS: dict[str, str] = {
    spelling: name for name in ALGORITHMS for spelling in (name, name.replace("-", ""))
}


def _lengths_to_algorithms() -> dict[int, tuple[str, ...]]:
    lengths: dict[int, tuple[str, ...]] = {}
    for name, (_, digits) in ALGORITHMS.items():
        lengths[digits] = (*lengths.get(digits, ()), name)
    return lengths


# Bare hex is guessed from its length. A length shared by two algorithms (SHA-256 and SHA3-256,
# should the latter ever be added) must not be guessed, so the map keeps every candidate.
LENGTHS: dict[int, tuple[str, ...]] = _lengths_to_algorithms()

_PREFIXED = re.compile(r"\{([^{}]*)\}(.*)", re.DOTALL)
_HEX = frozenset(string.hexdigits)


@dataclass(frozen=True)
class Checksum:
    """A digest to verify a download against; algorithm is canonical, hexdigest lower-case."""

    algorithm: str
    hexdigest: str

    @property
    def hashlib_name(self) -> str:
        return ALGORITHMS[self.algorithm][0]

    def __str__(self) -> str:
        return f"{{{self.algorithm}}}{self.hexdigest}"


def parse_checksum(text: str) -> Checksum:
    """Read a checksum as a user typed it, or raise InvalidMessage saying what is wrong with it."""

    def invalid(reason: str) -> InvalidMessage:
        return InvalidMessage(
            f"checksum {text!r} {reason}", details={"field": "checksum", "value": text}
        )

    stripped = text.strip()
    if not stripped:
        raise invalid("is empty; give {ALGO}hex, for example {SHA-256}ab12..., or omit it")

    prefixed = _PREFIXED.fullmatch(stripped)
    if prefixed is None:
        algorithm, digits = None, stripped
    else:
        spelled, digits = prefixed.groups()
        algorithm = _SPELLINGS.get(spelled.upper())
        if algorithm is None:
            raise invalid(
                f"names unknown algorithm {spelled!r}; supported: {', '.join(ALGORITHMS)}"
            )

    bad = sorted(set(digits) - _HEX)
    if bad:
        listed = ", ".join(repr(char) for char in bad)
        raise invalid(f"contains characters that are not hex digits: {listed}")

    if algorithm is None:
        candidates = LENGTHS.get(len(digits), ())
        if not candidates:
            valid = ", ".join(f"{n} ({' or '.join(names)})" for n, names in sorted(LENGTHS.items()))
            raise invalid(
                f"has {len(digits)} hex digits, which matches no algorithm; valid lengths: {valid}"
            )
        if len(candidates) > 1:
            raise invalid(
                f"has {len(digits)} hex digits, which could be {' or '.join(candidates)}; "
                f"prefix it with {{ALGO}}, for example {{{candidates[0]}}}{digits.lower()}"
            )
        algorithm = candidates[0]
    elif len(digits) != ALGORITHMS[algorithm][1]:
        raise invalid(
            f"has {len(digits)} hex digits, but {algorithm} needs {ALGORITHMS[algorithm][1]}"
        )

    return Checksum(algorithm, digits.lower())

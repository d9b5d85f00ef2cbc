"""Checksums in CloudStack's notation: {ALGO}hex, or bare hex whose length names the algorithm."""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from directdl.contracts.errors import InvalidMessage

if TYPE_CHECKING:
    from hashlib import _Hash


@dataclass(frozen=True)
class Algorithm:
    """A hash this project checks: its canonical name, hashlib's name, and its digest's size."""

    name: str
    hashlib_name: str

    @cached_property
    def hex_digits(self) -> int:
        return self.new().digest_size * 2

    def new(self) -> _Hash:
        # Not a security use of MD5 or SHA-1: the digest only names the bytes a source promised.
        return hashlib.new(self.hashlib_name, usedforsecurity=False)


# The one table of hash algorithms, canonical name -> algorithm, weakest first: a metalink's
# strongest hash is the last of its hashes in this order.
ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm("MD5", "md5"),
        Algorithm("SHA-1", "sha1"),
        Algorithm("SHA-224", "sha224"),
        Algorithm("SHA-256", "sha256"),
        Algorithm("SHA-384", "sha384"),
        Algorithm("SHA-512", "sha512"),
    )
}
# What a host reports when no checksum was asked for.
REPORTED = ALGORITHMS["SHA-256"]

# Users write SHA256 as often as SHA-256, metalinks sha-256 (v4) and sha256 (v3).
_SPELLINGS: dict[str, str] = {
    spelling: name for name in ALGORITHMS for spelling in (name, name.replace("-", ""))
}


def find_algorithm(spelled: str) -> Algorithm | None:
    """The algorithm `spelled` names in any casing, with or without its hyphen; None if none."""
    name = _SPELLINGS.get(spelled.upper())
    return ALGORITHMS[name] if name else None


def _lengths_to_algorithms() -> dict[int, tuple[str, ...]]:
    lengths: dict[int, tuple[str, ...]] = {}
    for name, algorithm in ALGORITHMS.items():
        lengths[algorithm.hex_digits] = (*lengths.get(algorithm.hex_digits, ()), name)
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
        return ALGORITHMS[self.algorithm].hashlib_name

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
        raise invalid(
            "is empty; give {ALGO}hex, for example {SHA-256}ab12..., or omit it (CLI: --checksum)"
        )

    prefixed = _PREFIXED.fullmatch(stripped)
    if prefixed is None:
        algorithm, digits = None, stripped
    else:
        spelled, digits = prefixed.groups()
        found = find_algorithm(spelled)
        if found is None:
            raise invalid(
                f"names unknown algorithm {spelled!r}; supported: {', '.join(ALGORITHMS)}"
            )
        algorithm = found.name

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
    elif len(digits) != (needed := ALGORITHMS[algorithm].hex_digits):
        raise invalid(f"has {len(digits)} hex digits, but {algorithm} needs {needed}")

    return Checksum(algorithm, digits.lower())

"""Parsing checksums as users type them: {ALGO}hex or bare hex."""

from __future__ import annotations

import hashlib

import pytest

from directdl.contracts import checksum as checksum_module
from directdl.contracts.checksum import (
    ALGORITHMS,
    REPORTED,
    Checksum,
    find_algorithm,
    parse_checksum,
)
from directdl.contracts.errors import InvalidMessage

pytestmark = pytest.mark.unit

CANONICAL = list(ALGORITHMS)
HASHLIB = {"MD5": "md5", "SHA-1": "sha1", "SHA-224": "sha224"}
HASHLIB |= {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
DIGITS = {"MD5": 32, "SHA-1": 40, "SHA-224": 56, "SHA-256": 64, "SHA-384": 96, "SHA-512": 128}


def real_digest(algorithm: str) -> str:
    return hashlib.new(HASHLIB[algorithm], b"template").hexdigest()


def spellings(algorithm: str) -> list[str]:
    hyphenless = algorithm.replace("-", "")
    return sorted({algorithm, algorithm.lower(), algorithm.title(), hyphenless, hyphenless.lower()})


def assert_rejected(text: str, *fragments: str) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse_checksum(text)
    assert repr(text) in caught.value.message
    assert caught.value.details == {"field": "checksum", "value": text}
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value


def test_the_table_matches_hashlib() -> None:
    table = {name: (found.hashlib_name, found.hex_digits) for name, found in ALGORITHMS.items()}
    assert table == {name: (HASHLIB[name], DIGITS[name]) for name in CANONICAL}
    for name in CANONICAL:
        assert len(real_digest(name)) == DIGITS[name]
        assert ALGORITHMS[name].new().name == HASHLIB[name]


def test_the_table_runs_weakest_to_strongest_and_reports_sha256() -> None:
    assert CANONICAL == ["MD5", "SHA-1", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
    assert REPORTED is ALGORITHMS["SHA-256"]


@pytest.mark.parametrize(
    ("spelled", "algorithm"),
    [(spelled, name) for name in CANONICAL for spelled in spellings(name)],
)
def test_find_algorithm_takes_every_spelling(spelled: str, algorithm: str) -> None:
    assert find_algorithm(spelled) is ALGORITHMS[algorithm]


@pytest.mark.parametrize("spelled", ["CRC32", "sha3-256", "SHA_256", " SHA-256", ""])
def test_find_algorithm_knows_no_other(spelled: str) -> None:
    assert find_algorithm(spelled) is None


@pytest.mark.parametrize(
    ("spelled", "algorithm"),
    [(spelled, name) for name in CANONICAL for spelled in spellings(name)],
)
@pytest.mark.parametrize("upper_hex", [False, True])
def test_prefixed_any_spelling(spelled: str, algorithm: str, upper_hex: bool) -> None:
    digest = real_digest(algorithm)
    text = f"{{{spelled}}}{digest.upper() if upper_hex else digest}"
    assert parse_checksum(text) == Checksum(algorithm, digest)


@pytest.mark.parametrize("algorithm", CANONICAL)
@pytest.mark.parametrize("upper_hex", [False, True])
def test_bare_hex_takes_algorithm_from_length(algorithm: str, upper_hex: bool) -> None:
    digest = real_digest(algorithm)
    assert parse_checksum(digest.upper() if upper_hex else digest) == Checksum(algorithm, digest)


@pytest.mark.parametrize("algorithm", CANONICAL)
def test_str_and_hashlib_name(algorithm: str) -> None:
    digest = real_digest(algorithm)
    parsed = parse_checksum(digest)
    assert str(parsed) == f"{{{algorithm}}}{digest}"
    assert parsed.hashlib_name == HASHLIB[algorithm]
    assert hashlib.new(parsed.hashlib_name, b"template").hexdigest() == parsed.hexdigest


@pytest.mark.parametrize("algorithm", CANONICAL)
def test_str_round_trips(algorithm: str) -> None:
    parsed = parse_checksum(real_digest(algorithm))
    assert parse_checksum(str(parsed)) == parsed


@pytest.mark.parametrize("padding", [" ", "\t", "\n", "  \r\n "])
def test_surrounding_whitespace_is_stripped(padding: str) -> None:
    digest = real_digest("SHA-256")
    expected = Checksum("SHA-256", digest)
    assert parse_checksum(f"{padding}{digest}{padding}") == expected
    assert parse_checksum(f"{padding}{{sha256}}{digest}{padding}") == expected


@pytest.mark.parametrize("text", ["", " ", "\t\n"])
def test_empty_is_rejected(text: str) -> None:
    assert_rejected(text, "empty", "(CLI: --checksum)")


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("g" * 32, "'g'"),
        ("z" + "0" * 63, "'z'"),
        ("0" * 62 + "xy", "'x', 'y'"),
        ("{MD5}" + "0" * 31 + "q", "'q'"),
        ("{SHA-256}" + "ab " * 21 + "a", "' '"),
        ("0x" + "0" * 62, "'x'"),
        ("{SHA-1}" + "é" * 40, "'é'"),
        ("0" * 16 + "-" + "0" * 15, "'-'"),
    ],
)
def test_non_hex_characters_are_named(text: str, bad: str) -> None:
    assert_rejected(text, "not hex digits", bad)


@pytest.mark.parametrize("algorithm", CANONICAL)
@pytest.mark.parametrize("delta", [-1, 1, -2])
def test_prefixed_wrong_length_names_expected_and_actual(algorithm: str, delta: int) -> None:
    actual = DIGITS[algorithm] + delta
    assert_rejected(
        f"{{{algorithm}}}{'a' * actual}",
        f"has {actual} hex digits, but {algorithm} needs {DIGITS[algorithm]}",
    )


@pytest.mark.parametrize("algorithm", CANONICAL)
def test_prefixed_digest_of_another_algorithm_is_rejected(algorithm: str) -> None:
    other = "SHA-512" if algorithm != "SHA-512" else "MD5"
    assert_rejected(f"{{{algorithm}}}{real_digest(other)}", f"but {algorithm} needs")


def test_prefix_without_digits() -> None:
    assert_rejected("{SHA-256}", "has 0 hex digits, but SHA-256 needs 64")


def test_message_example_from_the_brief() -> None:
    error = assert_rejected("{SHA-256}abc")
    assert error.message == "checksum '{SHA-256}abc' has 3 hex digits, but SHA-256 needs 64"


@pytest.mark.parametrize("length", [1, 3, 31, 33, 39, 41, 48, 63, 65, 127, 129, 256])
def test_bare_hex_of_unknown_length(length: int) -> None:
    error = assert_rejected("a" * length, f"has {length} hex digits", "matches no algorithm")
    for name, digits in DIGITS.items():
        assert f"{digits} ({name})" in error.message


@pytest.mark.parametrize("spelled", ["CRC32", "sha3-256", "SHA_256", "SHA 256", "blake2b", ""])
def test_unknown_algorithm_is_named_with_the_supported_ones(spelled: str) -> None:
    error = assert_rejected(f"{{{spelled}}}{real_digest('SHA-256')}", repr(spelled))
    for name in CANONICAL:
        assert name in error.message


@pytest.mark.parametrize(
    "text", ["{SHA-256" + "0" * 64, "SHA-256}" + "0" * 64, "{{SHA-256}}" + "0" * 64]
)
def test_malformed_prefix_is_rejected(text: str) -> None:
    assert_rejected(text)


@pytest.mark.parametrize(
    "lengths",
    [
        {64: ("SHA-256", "SHA3-256")},
        {32: ("MD5",), 64: ("SHA-256", "SHA3-256", "BLAKE2s")},
    ],
)
def test_ambiguous_length_asks_for_a_prefix(
    monkeypatch: pytest.MonkeyPatch, lengths: dict[int, tuple[str, ...]]
) -> None:
    monkeypatch.setattr(checksum_module, "LENGTHS", lengths)
    digest = real_digest("SHA-256")
    error = assert_rejected(digest.upper(), "has 64 hex digits", "prefix it with {ALGO}")
    for candidate in lengths[64]:
        assert candidate in error.message
    assert f"{{SHA-256}}{digest}" in error.message
    # An explicit prefix settles the ambiguity.
    assert parse_checksum(f"{{SHA-256}}{digest}") == Checksum("SHA-256", digest)


def test_lengths_map_has_no_ambiguity_today() -> None:
    assert all(len(names) == 1 for names in checksum_module.LENGTHS.values())
    assert {names[0]: n for n, names in checksum_module.LENGTHS.items()} == DIGITS


def test_checksum_is_frozen() -> None:
    parsed = parse_checksum(real_digest("MD5"))
    with pytest.raises(AttributeError):
        parsed.hexdigest = "0"  # type: ignore[misc]

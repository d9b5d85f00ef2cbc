"""The `expires` of signature version 3: every form DateUtil reads, and verifyRequest's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.cloudstack.expiry import BadExpires, check_request_expiry, parse_expires

pytestmark = pytest.mark.unit

MIDNIGHT = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        # ISO_OFFSET_DATE_TIME (and ISO_INSTANT, newer cmk's RFC3339 "Z")
        ("2030-01-01T00:00:00Z", MIDNIGHT),
        ("2030-01-01T00:00:00+00:00", MIDNIGHT),
        ("2030-01-01T05:30:00+05:30", MIDNIGHT),
        ("2029-12-31T16:00:00-08:00", MIDNIGHT),
        ("2030-01-01T00:00:15+00:00:15", MIDNIGHT),
        ("2030-01-01T00:00Z", MIDNIGHT),
        ("2030-01-01t00:00:00z", MIDNIGHT),
        ("2030-01-01T00:00:00.5Z", MIDNIGHT.replace(microsecond=500000)),
        ("2030-01-01T00:00:00.123456789Z", MIDNIGHT.replace(microsecond=123456)),
        # yyyy-MM-dd'T'HH:mm:ssZ (cs, CloudMonkey)
        ("2030-01-01T00:00:00+0000", MIDNIGHT),
        ("2030-01-01T00:00:00-0000", MIDNIGHT),
        ("2030-01-01T05:30:00+0530", MIDNIGHT),
        ("2029-12-31T16:00:00-0800", MIDNIGHT),
        # six fraction digits then X, Z or 'Z'
        ("2030-01-01T00:00:00.123456Z", MIDNIGHT.replace(microsecond=123456)),
        ("2030-01-01T00:00:00.123456+0000", MIDNIGHT.replace(microsecond=123456)),
        ("2030-01-01T05:00:00.000001+05", MIDNIGHT.replace(microsecond=1)),
        ("2030-01-01T05:30:00.000000+0530", MIDNIGHT),
        # the legacy yyyy-MM-dd'T'HH:mm:ss'Z'Z
        ("2030-01-01T00:00:00Z+0000", MIDNIGHT),
        ("2030-01-01T05:30:00Z+0530", MIDNIGHT),
        # ofPattern resolves SMART: past the month's end is its last day, 24:00 the next day
        ("2030-02-30T00:00:00+0000", datetime(2030, 2, 28, tzinfo=UTC)),
        ("2028-02-31T00:00:00Z+0000", datetime(2028, 2, 29, tzinfo=UTC)),
        ("2029-12-31T24:00:00+0000", MIDNIGHT),
    ],
)
def test_every_form_parses_to_its_instant(text: str, instant: datetime) -> None:
    parsed = parse_expires(text)
    assert parsed == instant
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2030-01-01",
        "2030-01-01T00:00:00",
        "2030-01-01 00:00:00Z",
        "2030-01-01T00:00:00Z ",
        "2030-01-01T00:00:00+05",
        "2030-01-01T00:00:00+05:3",
        "2030-01-01T00:00:00.123+0000",
        "2030-01-01T00:00:00.1234567+0000",
        "2030-01-01T00:00:00+19:00",
        "2030-01-01T00:00:00+0560",
        "2030-13-01T00:00:00Z",
        "2030-02-30T00:00:00Z",
        "2030-01-32T00:00:00+0000",
        "2030-01-01T00:00:60+0000",
        "2030-01-01T00:00:00z+0000",
        "\u0662\u0660\u0663\u0660-01-01T00:00:00Z",
        "1893456000",
        "tomorrow",
    ],
)
def test_anything_else_is_bad_and_named(text: str) -> None:
    with pytest.raises(BadExpires) as raised:
        parse_expires(text)
    assert repr(text) in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_huge_value_is_cut_in_the_message() -> None:
    with pytest.raises(BadExpires) as raised:
        parse_expires("9" * 10_000)
    assert len(str(raised.value)) < 100
    assert raised.value.text == "9" * 10_000


def v3(expires: str | None = None, **extra: str) -> dict[str, str]:
    params = {"command": "listZones", "signatureversion": "3", **extra}
    if expires is not None:
        params["expires"] = expires
    return params


def test_a_v3_request_expiring_now_or_later_passes() -> None:
    assert check_request_expiry(v3("2030-01-01T00:00:00+0000"), MIDNIGHT) is None
    assert check_request_expiry(v3("2030-01-01T01:00:00Z"), MIDNIGHT) is None
    assert check_request_expiry(v3("2130-01-01T00:00:00Z"), MIDNIGHT) is None


def test_a_v3_request_needs_a_parseable_expires_not_in_the_past() -> None:
    assert check_request_expiry(v3(), MIDNIGHT) is not None
    assert check_request_expiry(v3("soon"), MIDNIGHT) is not None
    assert check_request_expiry(v3("2029-12-31T23:59:59Z"), MIDNIGHT) is not None


def test_too_far_ahead_only_counts_with_max_ahead() -> None:
    params = v3("2030-01-01T00:15:01Z")
    assert check_request_expiry(params, MIDNIGHT) is None
    assert check_request_expiry(params, MIDNIGHT, timedelta(minutes=15)) is not None
    assert check_request_expiry(v3("2030-01-01T00:15:00Z"), MIDNIGHT, timedelta(minutes=15)) is None


def test_the_control_names_are_matched_ignoring_case() -> None:
    params = {"signatureVersion": "3", "Expires": "2029-01-01T00:00:00+0000"}
    assert check_request_expiry(params, MIDNIGHT) is not None


@pytest.mark.parametrize("version", [None, "1", "2", "03", "3 ", "v3"])
def test_without_version_3_expires_is_ignored(version: str | None) -> None:
    params = {"command": "listZones", "expires": "long ago"}
    if version is not None:
        params["signatureversion"] = version
    assert check_request_expiry(params, MIDNIGHT, timedelta(minutes=15)) is None


def test_require_v3_refuses_requests_without_it() -> None:
    assert check_request_expiry({"command": "listZones"}, MIDNIGHT, require_v3=True) is not None
    assert check_request_expiry(v3("2030-01-01T00:10:00Z"), MIDNIGHT, require_v3=True) is None

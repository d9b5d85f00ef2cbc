"""The `expires` of signature version 3: DateUtil.parseTZDateString and verifyRequest's checks."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from api.cloudstack.signing import control

_SHOWN = 64
_DATE_TIME = r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})T(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})"

# DateUtil tries its formatters in turn and takes the first that parses; only these can succeed.
# ISO_OFFSET_DATE_TIME: seconds optional, 1 to 9 fraction digits, "Z" or ±HH:MM[:ss], letters
# in any case, STRICT resolution. (ISO_INSTANT adds nothing: it parses an instant but no offset,
# so OffsetDateTime.parse cannot succeed with it; its "...Z" strings are read here.)
_ISO = re.compile(
    _DATE_TIME
    + r"(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?)?"
    + r"(?P<off>Z|[+-][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)",
    re.ASCII | re.IGNORECASE,
)
# ofPattern("yyyy-MM-dd'T'HH:mm:ssZ") and the legacy "...ss'Z'Z": an offset of exactly ±HHMM.
_PLAIN = re.compile(_DATE_TIME + r":(?P<s>[0-9]{2})Z?(?P<off>[+-][0-9]{4})", re.ASCII)
# ofPattern("...ss.SSSSSSX") and "...SSSSSSZ": exactly six digits, then "Z", ±HH or ±HHMM.
# ("...SSSSSS'Z'" never succeeds: it parses no offset, so there is no OffsetDateTime to make.)
_FRACTION = re.compile(
    _DATE_TIME + r":(?P<s>[0-9]{2})\.(?P<f>[0-9]{6})(?P<off>Z|[+-][0-9]{2}(?:[0-9]{2})?)", re.ASCII
)

_FORMS = ((_ISO, False), (_PLAIN, True), (_FRACTION, True))


class BadExpires(ValueError):
    """An `expires` no formatter of DateUtil.parseTZDateString reads."""

    def __init__(self, text: str) -> None:
        shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
        super().__init__(f"unparseable expires {shown!r}")
        self.text = text


def _offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes, seconds = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    total = hours * 3600 + minutes * 60 + seconds
    # The parser refuses minutes or seconds over 59, ZoneOffset anything beyond ±18:00.
    if minutes > 59 or seconds > 59 or total > 18 * 3600:
        raise ValueError(text)
    return timezone(timedelta(seconds=-total if text[0] == "-" else total))


def _resolve(match: re.Match[str], smart: bool) -> datetime:
    parts = match.groupdict()
    year, month, day, hour, minute = (int(parts[k]) for k in ("y", "mo", "d", "h", "mi"))
    second = int(parts["s"] or 0)
    fraction = parts.get("f") or ""
    extra = timedelta(0)
    if smart:
        # ofPattern resolves SMART: a day 29-31 past the month's end is its last day, and
        # 24:00:00 is the next day's midnight. The ISO formatters are STRICT and refuse both.
        if 1 <= month <= 12 and 29 <= day <= 31:
            day = min(day, calendar.monthrange(year, month)[1])
        if hour == 24 and minute == 0 and second == 0 and not fraction.strip("0"):
            hour, extra = 0, timedelta(days=1)
    micro = int(fraction[:6].ljust(6, "0"))
    at = datetime(year, month, day, hour, minute, second, micro, tzinfo=_offset(parts["off"]))
    return (at + extra).astimezone(UTC)


def parse_expires(text: str) -> datetime:
    """The instant (aware, UTC) an `expires` names, read as DateUtil.parseTZDateString reads it.

    Nanoseconds beyond the microsecond are dropped (CloudStack keeps milliseconds). Years past
    9999, which Java reads, are refused: Python has no such datetime.
    """
    for pattern, smart in _FORMS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        try:
            return _resolve(match, smart)
        except (ValueError, OverflowError):
            continue
    raise BadExpires(text)


def check_request_expiry(
    params: Mapping[str, str],
    now: datetime,
    max_ahead: timedelta | None = None,
    *,
    require_v3: bool = False,
) -> str | None:
    """None if the request's `expires` passes verifyRequest's checks, else why not (for the
    logs: the client always gets the same 401).

    With `signatureversion` exactly "3", `expires` must be there, parse, and not be before
    `now` (aware). `max_ahead` and `require_v3` are CloudStack's
    enforce.post.requests.and.timestamps (15 minutes): `expires` no later than now + max_ahead,
    and requests without signature version 3 refused. Otherwise `expires` is ignored.
    """
    version = control(params, "signatureversion")
    if version != "3":
        return "no signature version 3" if require_v3 else None
    expires = control(params, "expires")
    if expires is None:
        return "signature version 3 without expires"
    try:
        at = parse_expires(expires)
    except BadExpires as bad:
        return str(bad)
    if at < now:
        return f"expired at {at.isoformat()}"
    if max_ahead is not None and at > now + max_ahead:
        return f"expires at {at.isoformat()}, more than {max_ahead} ahead"
    return None

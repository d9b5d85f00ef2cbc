"""What every CloudStack response object shares: its two date formats, and Gson's way with nulls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]
"""A CloudStack response object, ready for json.dumps."""

# java.util.Date.toString() prints English names whatever the locale; strftime's %a/%b would not.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def as_utc(moment: datetime) -> datetime:
    """The instant in UTC; a naive datetime is taken to be UTC already, as directdl writes them."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def cs_date(moment: datetime) -> str:
    """CloudStack's response date, `yyyy-MM-dd'T'HH:mm:ssZ` (ApiResponseSerializer's Gson
    date format), always in UTC: `2025-01-07T10:15:00+0000`."""
    return f"{as_utc(moment):%Y-%m-%dT%H:%M:%S}+0000"


def java_date(moment: datetime) -> str:
    """java.util.Date.toString() in a UTC JVM, `EEE MMM dd HH:mm:ss zzz yyyy`:
    `Mon Jan 01 00:00:00 UTC 2024`. CloudStack formats a certificate's validity with it."""
    utc = as_utc(moment)
    day, month = _DAYS[utc.weekday()], _MONTHS[utc.month - 1]
    return f"{day} {month} {utc.day:02d} {utc:%H:%M:%S} UTC {utc.year}"


def compact(fields: Mapping[str, Any]) -> JsonObject:
    """The fields without those that are None: Gson (serializeNulls off) never writes a null,
    and clients test for a key's presence rather than for null."""
    return {key: value for key, value in fields.items() if value is not None}

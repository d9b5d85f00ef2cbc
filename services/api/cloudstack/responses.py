"""CloudStack's response rules: one top-level key, lists with a count, an empty list as `{}`."""

from __future__ import annotations

from typing import Any


def listing(
    object_name: str, items: list[dict[str, Any]], count: int | None = None
) -> dict[str, Any]:
    """A ListResponse's inside. CloudStack answers an empty list with no count and no array."""
    if not items:
        return {}
    return {"count": len(items) if count is None else count, object_name: items}


def page(items: list[Any], page: int | None, page_size: int | None) -> list[Any]:
    """CloudStack's paging over a whole list: `pagesize` -1 means all of it, and its default
    and largest page (default.page.size) is 500."""
    if page_size == -1:
        return items
    size = min(page_size or 500, 500)
    start = (max(page or 1, 1) - 1) * size
    return items[start : start + size]


def matching(items: list[dict[str, Any]], wanted: dict[str, str | None]) -> list[dict[str, Any]]:
    """The items whose fields equal every value given, as CloudStack's list filters do; case
    is ignored, as CloudStack's database collation ignores it."""
    given = {field: value.lower() for field, value in wanted.items() if value is not None}
    return [
        item
        for item in items
        if all(str(item.get(field, "")).lower() == value for field, value in given.items())
    ]

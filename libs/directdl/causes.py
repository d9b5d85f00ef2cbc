"""Finding what really went wrong inside the exceptions requests and urllib3 wrap."""

from __future__ import annotations


def find_cause(err: BaseException, *types: type[BaseException]) -> BaseException | None:
    """The first exception of `types` in err, its wrapped args, reasons, causes and contexts:
    requests hides a refused destination or a TLS failure several wrappers deep."""
    seen: set[int] = set()
    todo: list[object] = [err]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, types):
            return item
        todo.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])
    return None

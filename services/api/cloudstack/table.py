"""Every API the gateway serves, by name: the one table that listApis, the dispatch and the
README's list are made from."""

from __future__ import annotations

from api.cloudstack import jobs
from api.cloudstack.commands import (
    certificates,
    configurations,
    discovery,
    infrastructure,
    prepare,
    templates,
)
from api.cloudstack.spec import Api


def _by_name(*families: tuple[Api, ...]) -> dict[str, Api]:
    table: dict[str, Api] = {}
    for family in families:
        for api in family:
            if api.name in table:
                raise ValueError(f"two APIs are named {api.name}")
            table[api.name] = api
    return dict(sorted(table.items()))


APIS = _by_name(
    templates.APIS,
    prepare.APIS,
    certificates.APIS,
    configurations.APIS,
    infrastructure.APIS,
    jobs.APIS,
    discovery.APIS,
)

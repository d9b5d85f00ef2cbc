"""listHosts and listZones, over host.list: the hosts as their heartbeats describe them."""

from __future__ import annotations

from typing import Any

from api.cloudstack import views
from api.cloudstack.call import Call
from api.cloudstack.fields import HOST, ZONE
from api.cloudstack.responses import listing, page
from api.cloudstack.spec import Api, Param
from directdl.contracts import host as msg

NAMES = {"zone_id": "zoneid"}


def list_hosts(call: Call) -> dict[str, Any]:
    kind, hypervisor = call.text("type"), call.text("hypervisor")
    # Every directdl host is a KVM hypervisor host, which CloudStack calls Routing.
    if (kind is not None and kind.lower() != "routing") or (
        hypervisor is not None and hypervisor.upper() != "KVM"
    ):
        return {}
    items = [views.host_response(view) for view in _hosts(call)]
    for name, field in (("id", "id"), ("name", "name"), ("state", "state")):
        wanted = call.text(name)
        if wanted is not None:
            items = [item for item in items if str(item.get(field, "")).lower() == wanted.lower()]
    return listing(
        "host", page(items, call.integer("page"), call.integer("pagesize")), count=len(items)
    )


def list_zones(call: Call) -> dict[str, Any]:
    zones = sorted({view.zone_id for view in _hosts(call)})
    for name in ("id", "name"):
        wanted = call.text(name)
        if wanted is not None:
            zones = [zone for zone in zones if zone == wanted]
    # A zone is known from its hosts' heartbeats; none is disabled to the gateway's knowledge.
    return listing("zone", [views.zone_response(zone, enabled=True) for zone in zones])


def _hosts(call: Call) -> list[msg.HostView]:
    command = call.command(msg.ListHosts, NAMES, zone_id=call.text("zoneid"))
    return msg.HostList.model_validate(call.bus.call(command)).items


APIS = (
    Api(
        "listHosts",
        "Lists the KVM hosts directdl knows from their heartbeats.",
        list_hosts,
        params=(
            Param("id", "uuid", "the id of the host", related="listHosts"),
            Param("name", "string", "the name of the host"),
            Param("zoneid", "uuid", "the Zone ID for the host", related="listZones"),
            Param("state", "string", "the state of the host: Up or Down"),
            Param("type", "string", "the host type: Routing"),
            Param("hypervisor", "string", "hypervisor type of host: KVM"),
            Param("page", "integer", "the page, from 1"),
            Param("pagesize", "integer", "items per page, at most 500; -1 for all"),
        ),
        response=HOST,
    ),
    Api(
        "listZones",
        "Lists the zones of the hosts directdl knows.",
        list_zones,
        params=(
            Param("id", "uuid", "the ID of the zone", related="listZones"),
            Param("name", "string", "the name of the zone"),
        ),
        response=ZONE,
    ),
)

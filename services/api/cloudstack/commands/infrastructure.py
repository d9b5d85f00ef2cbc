"""listHosts, listStoragePools, listZones and updateZone: hosts, pools, zones in sync."""

from __future__ import annotations

from typing import Any

from api.cloudstack import errors, views
from api.cloudstack.call import Call
from api.cloudstack.fields import HOST, STORAGE_POOL, ZONE
from api.cloudstack.responses import listing, matching, page
from api.cloudstack.spec import PAGING, Api, Param
from directdl.contracts import host as msg
from directdl.contracts import sync

NAMES = {"zone_id": "zoneid"}


def list_hosts(call: Call) -> dict[str, Any]:
    kind, hypervisor = call.text("type"), call.text("hypervisor")
    # Every directdl host is a KVM hypervisor host, which CloudStack calls Routing.
    if (kind is not None and kind.lower() != "routing") or (
        hypervisor is not None and hypervisor.upper() != "KVM"
    ):
        return {}
    items = matching(
        [views.host_response(view) for view in _hosts(call)],
        {name: call.text(name) for name in ("id", "name", "state")},
    )
    return listing(
        "host", page(items, call.integer("page"), call.integer("pagesize")), count=len(items)
    )


def list_storage_pools(call: Call) -> dict[str, Any]:
    """Each host's pool, as its heartbeats say: what prepareTemplate's `storageid` names, and
    what cmk completes it from."""
    items = matching(
        [views.storage_pool_response(view, pool) for view in _hosts(call) for pool in view.pools],
        {name: call.text(name) for name in ("id", "name", "clusterid")},
    )
    return listing(
        "storagepool",
        page(items, call.integer("page"), call.integer("pagesize")),
        count=len(items),
    )


def list_zones(call: Call) -> dict[str, Any]:
    # The sync-scheduler knows each zone from its hosts' heartbeats, and whether it is in
    # certificate sync: what CloudStack's allocationstate decides for its own sync task.
    found = sync.ZoneList.model_validate(call.bus.call(sync.ListZones())).items
    zones = [views.zone_response(z.zone_id, enabled=z.enabled) for z in found]
    return listing("zone", matching(zones, {name: call.text(name) for name in ("id", "name")}))


def update_zone(call: Call) -> dict[str, Any]:
    """Only `allocationstate`, which is directdl's zone.enable and zone.disable."""
    zone_id, state = call.required("id"), call.text("allocationstate")
    if state is None:
        found = sync.ZoneList.model_validate(call.bus.call(sync.ListZones())).items
        known = next((z for z in found if z.zone_id == zone_id), None)
        if known is None:
            raise errors.invalid(call.api.name, "id", zone_id)
        return {"zone": views.zone_response(known.zone_id, enabled=known.enabled)}
    if state.lower() not in ("enabled", "disabled"):
        raise errors.invalid(call.api.name, "allocationstate", state)
    command = sync.EnableZone if state.lower() == "enabled" else sync.DisableZone
    switched = sync.ZoneSync.model_validate(
        call.bus.call(call.command(command, {"zone_id": "id"}, zone_id=zone_id))
    )
    return {"zone": views.zone_response(switched.zone_id, enabled=switched.enabled)}


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
            *PAGING,
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
    Api(
        "listStoragePools",
        "Lists the primary storage pools of the hosts directdl knows.",
        list_storage_pools,
        params=(
            Param("id", "uuid", "the ID of the storage pool", related="listStoragePools"),
            Param("name", "string", "the name of the storage pool"),
            Param("zoneid", "uuid", "the Zone ID for the storage pool", related="listZones"),
            Param("clusterid", "uuid", "list storage pools belonging to the specific cluster"),
            *PAGING,
        ),
        response=STORAGE_POOL,
    ),
    Api(
        "updateZone",
        "Enables or disables a zone for certificate sync; nothing else of a zone is kept.",
        update_zone,
        params=(
            Param("id", "uuid", "the ID of the Zone", required=True, related="listZones"),
            Param("allocationstate", "string", "Enabled or Disabled: in certificate sync or not"),
        ),
        response=ZONE,
    ),
)

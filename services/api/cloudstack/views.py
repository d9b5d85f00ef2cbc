"""directdl's views as CloudStack's response objects: pure functions, each returning a dict ready
for json.dumps. Hosts, zones and lists are here; templates, certificates and settings in the
views_* modules beside it, all importable from this one."""

from __future__ import annotations

from api.cloudstack.views_certificates import (
    certificate_entry_response,
    certificate_response,
    host_map_entry,
    host_status_response,
    java_dn,
    serial_decimal,
    validity,
)
from api.cloudstack.views_common import JsonObject, as_utc, compact, cs_date, java_date
from api.cloudstack.views_settings import (
    configuration_response,
    is_hidden,
    setting_text,
    setting_type,
)
from api.cloudstack.views_templates import (
    BYPASSED,
    PoolId,
    checksum_value,
    download_detail,
    pools_holding,
    template_response,
    template_responses,
)
from directdl.contracts.host import HostState, HostView, PoolStatus

__all__ = [
    "BYPASSED",
    "JsonObject",
    "PoolId",
    "as_utc",
    "certificate_entry_response",
    "certificate_response",
    "checksum_value",
    "compact",
    "configuration_response",
    "cs_date",
    "download_detail",
    "host_map_entry",
    "host_response",
    "host_status_response",
    "is_hidden",
    "java_date",
    "java_dn",
    "pools_holding",
    "serial_decimal",
    "setting_text",
    "setting_type",
    "storage_pool_response",
    "template_response",
    "template_responses",
    "validity",
    "zone_response",
]

# CloudStack's com.cloud.host.Status names. directdl has no Disconnected or Alert: a host
# silent for three heartbeats is Down, as one that said goodbye is.
_HOST_STATES = {HostState.UP: "Up", HostState.DOWN: "Down"}


def host_response(view: HostView) -> JsonObject:
    """A HostResponse for listHosts: a KVM routing host, as the agents' heartbeats describe it.
    directdl knows no host name, address or creation date; ids stand in for names, the rest is
    left out as Gson would leave out nulls."""
    return compact(
        {
            "id": view.host_id,
            "name": view.host_id,
            "state": _HOST_STATES.get(view.state, view.state.value),
            "type": "Routing",
            "hypervisor": "KVM",
            "zoneid": view.zone_id,
            "zonename": view.zone_id,
            "clusterid": view.cluster_id,
            "clustername": view.cluster_id,
            "clustertype": "CloudManaged",
            "resourcestate": "Enabled",
            "lastpinged": cs_date(view.last_seen),
            "islocalstorageactive": False,
            "hahost": False,
            "hasannotations": False,
        }
    )


def storage_pool_response(view: HostView, pool: PoolStatus) -> JsonObject:
    """A StoragePoolResponse: the host's local pool (scope HOST), Up while its host is. The
    host is named too, as an extra key, since every directdl pool belongs to one host."""
    return {
        "id": pool.pool_id,
        "name": pool.pool_id,
        "zoneid": view.zone_id,
        "zonename": view.zone_id,
        "clusterid": view.cluster_id,
        "clustername": view.cluster_id,
        "hostid": view.host_id,
        "type": "Filesystem",
        "scope": "HOST",
        "hypervisor": "KVM",
        # StoragePoolStatus has no Down: a pool whose host is silent takes no template.
        "state": "Up" if view.state is HostState.UP else "Disabled",
        "disksizetotal": pool.capacity_bytes,
        "disksizeused": pool.capacity_bytes - pool.free_bytes,
        "hasannotations": False,
    }


def zone_response(zone_id: str, enabled: bool) -> JsonObject:
    """A ZoneResponse for listZones. `allocationstate` is what CloudStack's certificate task
    filters zones by (DataCenterDao.listEnabledZones), which is directdl's zone.enable and
    zone.disable; the rest are the constants of an advanced zone."""
    return {
        "id": zone_id,
        "name": zone_id,
        "allocationstate": "Enabled" if enabled else "Disabled",
        "networktype": "Advanced",
        "securitygroupsenabled": False,
        "localstorageenabled": False,
        "type": "Core",
        "dhcpprovider": "VirtualRouter",
        "tags": [],
        "hasannotations": False,
    }

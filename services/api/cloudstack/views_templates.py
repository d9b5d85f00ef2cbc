"""TemplateView as CloudStack's TemplateResponse: one object per (template, zone)."""

from __future__ import annotations

from collections.abc import Iterable

from api.cloudstack.views_common import JsonObject, compact, cs_date
from directdl.contracts.host import HostView
from directdl.contracts.template import TemplateView

PoolId = str
"""A primary-storage pool holding a template's file, as the agents' inventories name it."""

# TemplateJoinDaoImpl reports this literal for a template whose template_store_ref is BYPASSED,
# which is what every direct-download template is: no secondary storage ever holds it.
BYPASSED = "Bypassed Secondary Storage"


def checksum_value(checksum: str) -> str:
    """The hex without its `{ALGO}` prefix, as DigestHelper.getHashValueFromChecksumValue
    returns it for the response: `{SHA-256}ab12…` becomes `ab12…`; bare hex stays as it is."""
    if checksum.startswith("{") and "}" in checksum:
        return checksum.split("}", 1)[1]
    return checksum


def pools_holding(template_id: str, zone_id: str, hosts: Iterable[HostView]) -> list[PoolId]:
    """The pools of a zone whose hosts last said they hold the template, each once (a shared
    pool is reported by every host of its cluster), in the order first seen."""
    pools = (
        stored.pool_id
        for host in hosts
        if host.zone_id == zone_id
        for stored in host.templates
        if stored.template_id == template_id
    )
    return list(dict.fromkeys(pools))


def download_detail(pool_id: PoolId) -> JsonObject:
    # TemplateJoinDaoImpl adds one such map per template_spool_ref row, with the pool's name and
    # uuid; directdl knows a pool by one id, so it is both.
    return {
        "datastore": pool_id,
        "datastoreId": pool_id,
        "datastoreRole": "Primary",
        "downloadPercent": "100",
        "downloadState": "DOWNLOADED",
    }


def template_response(view: TemplateView, zone_id: str, pools: Iterable[PoolId] = ()) -> JsonObject:
    """The TemplateResponse of `view` in one zone; `pools` are the zone's pools holding it."""
    return compact(
        {
            "id": view.id,
            "name": view.name,
            # CloudStack defaults displaytext to the name; directdl keeps no other.
            "displaytext": view.name,
            "ispublic": True,
            "isready": True,
            "isfeatured": False,
            # camelCase in TemplateResponse's @SerializedName, unlike every other field.
            "crossZones": False,
            "passwordenabled": False,
            "isextractable": False,
            "sshkeyenabled": False,
            "isdynamicallyscalable": False,
            "requireshvm": False,
            "bits": 64,
            "deployasis": False,
            "format": view.format.value,
            "hypervisor": view.hypervisor,
            "templatetype": view.template_type.value,
            "directdownload": view.direct_download,
            "status": BYPASSED,
            "url": view.url,
            "checksum": checksum_value(view.checksum) if view.checksum else None,
            # TemplateJoinDaoImpl sets the size only when it is above 0.
            "size": view.size if view.size is not None and view.size > 0 else None,
            "created": cs_date(view.created_at),
            # directdl's zone ids are names too; clients need both to be filled.
            "zoneid": zone_id,
            "zonename": zone_id,
            "account": "admin",
            "domain": "ROOT",
            "domainpath": "/",
            "details": dict(view.details),
            "downloaddetails": [download_detail(pool) for pool in dict.fromkeys(pools)],
            "tags": [],
            "hasannotations": False,
        }
    )


def template_responses(view: TemplateView, hosts: Iterable[HostView] = ()) -> list[JsonObject]:
    """One TemplateResponse per zone of the template, as listTemplates and registerTemplate
    answer, with each zone's pools read from the hosts' inventories."""
    known = list(hosts)
    return [
        template_response(view, zone, pools_holding(view.id, zone, known)) for zone in view.zone_ids
    ]

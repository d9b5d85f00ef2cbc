"""registerTemplate, listTemplates, updateTemplate and deleteTemplate, over template.*."""

from __future__ import annotations

from typing import Any

from api.cloudstack import errors, jobs, views
from api.cloudstack.call import Call
from api.cloudstack.errors import ApiError, ApiErrorCode, CsErrorCode
from api.cloudstack.fields import SUCCESS, TEMPLATE
from api.cloudstack.responses import listing, page
from api.cloudstack.spec import PAGING, Api, Param
from directdl.contracts import host
from directdl.contracts import template as tpl

# directdl's field names, as CloudStack names the parameters they come from.
NAMES = {
    "id": "id",
    "name": "name",
    "url": "url",
    "zone_id": "zoneid",
    "hypervisor": "hypervisor",
    "format": "format",
    "checksum": "checksum",
    "template_type": "templatetype",
    "details": "details",
}
TYPES = ", ".join(t.value for t in tpl.TemplateType)
PAGE_SIZE = 500  # directdl's largest page; listTemplates reads them all, then pages itself


def register(call: Call) -> dict[str, Any]:
    _check_direct_kvm(call)
    command = call.command(
        tpl.RegisterTemplate,
        NAMES,
        name=call.required("name"),
        url=call.required("url"),
        zone_id=_zones(call),
        hypervisor="KVM",
        format=call.required("format"),
        checksum=call.text("checksum"),
        template_type=_template_type(call),
        details=call.map("details") or None,
    )
    view = tpl.TemplateResult.model_validate(call.bus.call(command)).template
    return listing("template", views.template_responses(view))


def list_templates(call: Call) -> dict[str, Any]:
    call.required("templatefilter")  # every filter lists the same: directdl has no owners
    hypervisor = call.text("hypervisor")
    if hypervisor is not None and hypervisor.upper() != "KVM":
        return {}
    zone = call.text("zoneid")
    found = _templates(call, zone)
    pairs = [(view, z) for view in found for z in view.zone_ids if zone in (None, z)]
    shown = page(pairs, call.integer("page"), call.integer("pagesize"))
    # Where each is on primary storage, as the hosts' inventories say: downloaddetails.
    hosts = _hosts(call, zone) if shown else []
    items = [
        views.template_response(view, z, views.pools_holding(view.id, z, hosts))
        for view, z in shown
    ]
    return listing("template", items, count=len(pairs))


def update(call: Call) -> dict[str, Any]:
    command = call.command(
        tpl.UpdateTemplate,
        NAMES,
        id=call.required("id"),
        name=call.text("name"),
        template_type=_template_type(call),
    )
    view = tpl.TemplateResult.model_validate(call.bus.call(command)).template
    return {"template": views.template_response(view, view.zone_ids[0])}


def delete(call: Call) -> dict[str, Any]:
    command = call.command(tpl.DeleteTemplate, NAMES, id=call.required("id"))
    return jobs.start(call, command, jobs.new_id(), instance=("Template", command.id))


def _templates(call: Call, zone: str | None) -> list[tpl.TemplateView]:
    template_id = call.text("id")
    if template_id is not None:
        get = call.command(tpl.GetTemplate, NAMES, id=template_id)
        try:
            return [tpl.TemplateResult.model_validate(call.bus.call(get)).template]
        except ApiError as err:
            if err.errorcode is ApiErrorCode.PARAM_ERROR:  # an unknown id lists nothing
                return []
            raise
    found: list[tpl.TemplateView] = []
    number = 1
    while True:
        command = call.command(
            tpl.ListTemplates,
            NAMES,
            zone_id=zone,
            name=call.text("name"),
            keyword=call.text("keyword"),
            page=number,
            page_size=PAGE_SIZE,
        )
        result = tpl.TemplatePage.model_validate(call.bus.call(command))
        found.extend(result.items)
        if not result.items or len(found) >= result.total:
            return found
        number += 1


def _hosts(call: Call, zone: str | None) -> list[host.HostView]:
    command = call.command(host.ListHosts, NAMES, zone_id=zone)
    return host.HostList.model_validate(call.bus.call(command)).items


def _check_direct_kvm(call: Call) -> None:
    hypervisor = call.required("hypervisor")
    if hypervisor.upper() != "KVM":
        raise ApiError(
            ApiErrorCode.PARAM_ERROR,
            f"Only direct download of KVM templates is served here, not hypervisor {hypervisor}",
            CsErrorCode.INVALID_PARAMETER_VALUE,
        )
    # CloudStack's default is false; here an absent flag means the only thing served.
    if call.boolean("directdownload", True) is False:
        raise ApiError(
            ApiErrorCode.UNSUPPORTED_ACTION,
            "Only direct download of KVM templates is served here: directdownload=false "
            "needs secondary storage, which directdl bypasses",
        )


def _zones(call: Call) -> str | list[str]:
    zone, zones = call.text("zoneid"), call.text("zoneids")
    if zone is not None and zones is not None:
        raise errors.param_error("Parameter zoneids cannot combine with parameter zoneid")
    named = [z.strip() for z in (zones or "").split(",") if z.strip()] or ([zone] if zone else [])
    if not named:
        raise errors.missing(call.api.name, "zoneid")
    if "-1" in named:
        raise errors.param_error(
            "zoneid -1 (every zone) is not served here: name the zones, with zoneids"
        )
    return named[0] if len(named) == 1 else named


def _template_type(call: Call) -> str | None:
    named = call.text("templatetype")
    if named is None:
        return "ROUTING" if call.boolean("isrouting") else None
    if named.upper() not in {t.value for t in tpl.TemplateType}:
        raise errors.param_error(
            f"templatetype {named[:32]} is not served here: it is one of {TYPES}"
        )
    return named.upper()


_ZONE = Param(
    "zoneid", "uuid", "the ID of the zone the template is to be hosted on", related="listZones"
)
_ID = Param("id", "uuid", "the ID of the template", required=True, related="listTemplates")
APIS = (
    Api(
        "registerTemplate",
        "Registers an existing template for direct download into KVM hosts' primary storage.",
        register,
        params=(
            Param("name", "string", "the name of the template", required=True, length=251),
            Param(
                "url",
                "string",
                "the URL of where the template is hosted",
                required=True,
                length=2048,
            ),
            Param(
                "format", "string", "the format of the template: QCOW2, RAW or ISO", required=True
            ),
            Param("hypervisor", "string", "the target hypervisor: KVM", required=True),
            _ZONE,
            Param(
                "zoneids",
                "list",
                "a list of zone ids where the template will be hosted",
                related="listZones",
            ),
            Param("checksum", "string", "the checksum, {SHA-256}hex or {MD5}hex; bare hex is MD5"),
            Param("directdownload", "boolean", "true: direct download, the only kind served here"),
            Param("templatetype", "string", f"the type of the template: {TYPES}"),
            Param(
                "isrouting", "boolean", "true if the template type is routing, i.e. for a system VM"
            ),
            Param("details", "map", "template details; HTTP_HEADER:<name> become request headers"),
            Param("displaytext", "string", "accepted and ignored: the name is shown", length=4096),
            Param("ostypeid", "uuid", "accepted and ignored: directdl keeps no guest OS types"),
        ),
        response=TEMPLATE,
    ),
    Api(
        "listTemplates",
        "List templates registered for direct download.",
        list_templates,
        params=(
            Param(
                "templatefilter",
                "string",
                "accepted for CloudStack clients: all filters list every template",
                required=True,
            ),
            Param("id", "uuid", "the template ID", related="listTemplates"),
            Param("name", "string", "the template name, exactly"),
            Param("keyword", "string", "part of the template name"),
            Param("zoneid", "uuid", "list templates by zone ID", related="listZones"),
            Param("hypervisor", "string", "the hypervisor: KVM lists all, others none"),
            *PAGING,
        ),
        response=TEMPLATE,
    ),
    Api(
        "updateTemplate",
        "Updates a template's name or type (USER, ROUTING or SYSTEM).",
        update,
        params=(
            _ID,
            Param("name", "string", "the name of the template", length=251),
            Param("templatetype", "string", f"the type of the template: {TYPES}"),
            Param("isrouting", "boolean", "true if the template type is routing"),
        ),
        response=TEMPLATE,
    ),
    Api(
        "deleteTemplate",
        "Deletes a template; the hosts drop their copies of it and stop its downloads.",
        delete,
        params=(
            _ID,
            Param(
                "zoneid",
                "uuid",
                "accepted and ignored: it goes from every zone",
                related="listZones",
            ),
        ),
        response=SUCCESS,
        isasync=True,
        job_result=jobs.success,
    ),
)

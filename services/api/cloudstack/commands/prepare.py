"""prepareTemplate as a directdl deploy: async, with its progress, then the pool and the path."""

from __future__ import annotations

from typing import Any

from api.cloudstack import jobs, views
from api.cloudstack.call import Call
from api.cloudstack.errors import ApiError, ApiErrorCode
from api.cloudstack.fields import TEMPLATE
from api.cloudstack.spec import Api, Param
from directdl.contracts import deploy
from directdl.contracts import template as tpl

NAMES = {
    "template_id": "templateid",
    "zone_id": "zoneid",
    "pool_id": "storageid",
    "host_id": "hostid",
    "deploy_id": "jobid",
}


def prepare(call: Call) -> dict[str, Any]:
    job_id = jobs.new_id()
    command = call.command(
        deploy.DeployTemplate,
        NAMES,
        template_id=call.required("templateid"),
        zone_id=call.required("zoneid"),
        pool_id=call.text("storageid"),
        host_id=call.text("hostid"),
        deploy_id=job_id,  # the job, the command and the deploy share one id
    )
    return jobs.start(call, command, job_id, instance=("Template", command.template_id))


def prepared(call: Call, outcome: dict[str, Any]) -> dict[str, Any]:
    """The template as CloudStack would answer it, placed on the pool the deploy used, with
    where and how it got there beside that pool's entry."""
    get = call.command(tpl.GetTemplate, NAMES, id=outcome["template_id"])
    try:
        view = tpl.TemplateResult.model_validate(call.bus.call(get)).template
        response = views.template_response(view, outcome["zone_id"], [outcome["pool_id"]])
    except ApiError as err:
        if err.errorcode is not ApiErrorCode.PARAM_ERROR:
            raise  # the bus is down: the next query makes it
        # Deleted since: the job still succeeded, and says where the deploy put it.
        response = {
            "id": outcome["template_id"],
            "zoneid": outcome["zone_id"],
            "zonename": outcome["zone_id"],
            "downloaddetails": [views.download_detail(outcome["pool_id"])],
        }
    placed = response["downloaddetails"][0]
    placed.update(
        {
            key: outcome[name]
            for key, name in (
                ("host", "host_id"),
                ("path", "path"),
                ("digest", "digest"),
                ("cached", "cached"),
                ("durationSeconds", "duration_s"),
            )
            if outcome.get(name) is not None
        }
    )
    return {"template": response}


APIS = (
    Api(
        "prepareTemplate",
        "Downloads a template straight into a KVM host's primary storage (a directdl deploy); "
        "the job reports its progress, then the pool and the path.",
        prepare,
        params=(
            Param(
                "templateid",
                "uuid",
                "template ID of the template to be prepared in primary storage(s).",
                required=True,
                related="listTemplates",
            ),
            Param(
                "zoneid",
                "uuid",
                "zone ID of the template to be prepared in primary storage(s).",
                required=True,
                related="listZones",
            ),
            Param(
                "storageid",
                "uuid",
                "storage pool ID of the primary storage pool to which the template should be "
                "prepared; unset: the pool of the host directdl picks",
                related="listStoragePools",
            ),
            Param(
                "hostid",
                "uuid",
                "(directdl) the host to deploy on; unset: an Up host of the zone",
                related="listHosts",
            ),
        ),
        response=TEMPLATE,
        isasync=True,
        job_result=prepared,
    ),
)

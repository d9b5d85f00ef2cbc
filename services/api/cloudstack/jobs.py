"""Async jobs: started under the id of the command they send, and queryAsyncJobResult, which
finds out how a job ended even after the gateway restarted."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from api.cloudstack import errors, views
from api.cloudstack.call import Call
from api.cloudstack.errors import ApiError, CsErrorCode
from api.cloudstack.fields import JOB
from api.cloudstack.spec import Api, Param
from api.domain.jobs import JOBRESULT, OUTCOME, Job, JobStatus
from directdl.contracts import deploy
from directdl.contracts.base import Command
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply

# How long a start waits for the answer, which most commands give at once: a refusal is
# then an HTTP error, as CloudStack's parameter checks are, and not a failed job.
START_WAIT_S = 3.0
# A pending job's query asks directdl again at most this often.
ASK_AGAIN_AFTER = timedelta(seconds=3)
ASK_AGAIN_WAIT_S = 2.0
DEPLOY = deploy.DeployTemplate.routing_key
# The Java class CloudStack names in `cmd`; clients only show it.
COMMAND_CLASSES = {
    "deleteTemplate": "org.apache.cloudstack.api.command.user.template.DeleteTemplateCmd",
    "prepareTemplate": "org.apache.cloudstack.api.command.admin.template.PrepareTemplateCmd",
}


def new_id() -> str:
    """A job's id, which is also its command's message_id (and a deploy's deploy_id)."""
    return str(uuid.uuid4())


def start(call: Call, command: Command, job_id: str, instance: tuple[str, str]) -> dict[str, Any]:
    """Record the job, then send its command; `{"jobid": ...}`, or the refusal at once."""
    job = Job(
        id=job_id,
        api=call.api.name,
        routing_key=command.routing_key,
        command=command.model_dump_json(exclude_none=True).encode(),
        api_key=call.api_key,
        created_at=call.clock(),
        instance_type=instance[0],
        instance_id=instance[1],
    )
    call.jobs.record(job)  # before it is sent: whatever answers, the job is there to find
    try:
        reply = call.bus.ask_raw(job.routing_key, job.command, job.id, START_WAIT_S)
    except ApiError as err:
        if err.cserrorcode is CsErrorCode.OPERATION_TIMED_OUT:
            return {"jobid": job.id}  # still running: its end comes as events or on asking
        _settle_failure(call, job.id, err)
        raise
    ended = settle(call, job.id, reply)
    if ended is not None and ended.status is JobStatus.FAILED and not reply.ok:
        assert reply.error is not None
        raise errors.from_directdl(reply.error)
    return {"jobid": job.id}


def settle(call: Call, job_id: str, reply: Reply) -> Job | None:
    """The job as this reply ends it."""
    now = call.clock()
    if reply.ok:
        return call.jobs.update(job_id, lambda job: job.succeeded({OUTCOME: reply.result}, now))
    assert reply.error is not None
    return _settle_failure(call, job_id, errors.from_directdl(reply.error))


def _settle_failure(call: Call, job_id: str, err: ApiError) -> Job | None:
    now = call.clock()
    return call.jobs.update(job_id, lambda job: job.failed(int(err.errorcode), err.errortext, now))


def query(call: Call) -> dict[str, Any]:
    job_id = call.required("jobid")
    job = call.jobs.get(job_id)
    if job is None:
        raise errors.param_error(
            f"Unable to execute API command queryasyncjobresult due to invalid value. Invalid "
            f"parameter jobid value={job_id[:64]} due to incorrect long value format, or entity "
            "does not exist or due to incorrect parameter annotation for the field in api cmd "
            "class."
        )
    if job.pending:
        job = _ask_again(call, job)
    return _response(call, job)


def _ask_again(call: Call, job: Job) -> Job:
    """A reply lost with a restarted gateway, or an event not yet consumed: directdl knows."""
    now = call.clock()
    if now - (job.asked_again_at or job.created_at) < ASK_AGAIN_AFTER:
        return job
    call.jobs.update(job.id, lambda j: replace(j, asked_again_at=now))
    try:
        if job.routing_key == DEPLOY:
            return _deploy_state(call, job) or job
        reply = call.bus.ask_raw(job.routing_key, job.command, job.id, ASK_AGAIN_WAIT_S)
    except ApiError:
        return job  # the bus is down or slow: the job is still pending, ask next time
    return settle(call, job.id, reply) or job


def _deploy_state(call: Call, job: Job) -> Job | None:
    reply = call.bus.ask(deploy.GetDeploy(deploy_id=job.id), None, ASK_AGAIN_WAIT_S)
    if not reply.ok:
        assert reply.error is not None
        if reply.error.code is not ErrorCode.NOT_FOUND:
            return None
        # Registration never took it: send it again under its id; a refusal stored in the
        # inbox comes back, a deploy never received starts now, and none starts twice.
        again = call.bus.ask_raw(job.routing_key, job.command, job.id, ASK_AGAIN_WAIT_S)
        return settle(call, job.id, again)
    view = deploy.DeployView.model_validate(reply.result)
    now = call.clock()
    if view.state is deploy.AttemptState.SUCCEEDED:
        outcome = view.model_dump(mode="json", exclude_none=True)
        return call.jobs.update(job.id, lambda j: j.succeeded({OUTCOME: outcome}, now))
    if view.state is deploy.AttemptState.FAILED:
        text = f"Template {view.template_id} could not be deployed ({view.code}): {view.message}"
        return call.jobs.update(job.id, lambda j: j.failed(530, text, now))
    percent = int(100 * (view.bytes_done or 0) / view.total) if view.total else 0
    return call.jobs.update(job.id, lambda j: j.advanced(percent))


def _response(call: Call, job: Job) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountid": "admin",
        "userid": job.api_key[:12],
        "cmd": COMMAND_CLASSES.get(job.api, job.api),
        "jobid": job.id,
        "jobstatus": int(job.status),
        "jobprocstatus": job.progress,
        "jobresultcode": job.result_code,
        "jobinstancetype": job.instance_type,
        "jobinstanceid": job.instance_id,
        "created": views.cs_date(job.created_at),
    }
    if job.status is JobStatus.SUCCEEDED:
        body["jobresulttype"] = "object"
        body["jobresult"] = _result(call, job)
    elif job.status is JobStatus.FAILED:
        body["jobresulttype"] = "object"
        body["jobresult"] = {"errorcode": job.result_code, "errortext": job.error_text or ""}
    if job.completed_at is not None:
        body["completed"] = views.cs_date(job.completed_at)
    return {key: value for key, value in body.items() if value is not None}


def _result(call: Call, job: Job) -> dict[str, Any]:
    kept = job.result or {}
    if JOBRESULT in kept:
        return dict(kept[JOBRESULT])
    api = call.apis.get(job.api)
    made = {"success": True}
    if api is not None and api.job_result is not None:
        made = api.job_result(call, kept.get(OUTCOME) or {})
    call.jobs.keep(job.id, {JOBRESULT: made})
    return made


def success(_call: Call, _outcome: dict[str, Any]) -> dict[str, Any]:
    return {"success": True}


APIS = (
    Api(
        "queryAsyncJobResult",
        "Retrieves the current status of an asynchronous job.",
        query,
        params=(Param("jobid", "uuid", "the ID of the asynchronous job", required=True),),
        response=JOB,
    ),
)

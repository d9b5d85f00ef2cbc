"""listApis, generated from the gateway's own table of APIs, never kept by hand."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.cloudstack.call import Call
from api.cloudstack.errors import ApiError, ApiErrorCode, CsErrorCode
from api.cloudstack.spec import Api, Field, Param


def list_apis(call: Call) -> dict[str, Any]:
    name = call.text("name")
    apis = [api for api in call.apis.values() if name in (None, api.name)]
    if not apis:  # also what keeps cmk from an empty answer, on which its sync panics
        raise ApiError(
            ApiErrorCode.INTERNAL_ERROR,
            "Api Discovery plugin was unable to find an api by that name or process any apis",
            CsErrorCode.SERVER_API,
        )
    return {"count": len(apis), "api": [describe(api) for api in apis]}


def describe(api: Api) -> dict[str, Any]:
    return {
        "name": api.name,
        "description": api.description,
        "isasync": api.isasync,
        "since": api.since,
        "related": api.related,
        "params": [_param(p) for p in api.params],
        "response": _fields(api.response),
    }


def _param(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "description": param.description,
        "type": param.type,
        "length": param.length,
        "required": param.required,
        "related": param.related,
    }


def _fields(fields: Iterable[Field]) -> list[dict[str, Any]]:
    out = []
    for field in fields:
        entry: dict[str, Any] = {
            "name": field.name,
            "description": field.description,
            "type": field.type,
        }
        if field.response:
            entry["response"] = _fields(field.response)
        out.append(entry)
    return out


APIS = (
    Api(
        "listApis",
        "lists all available apis on the server, provided by the Api Discovery plugin",
        list_apis,
        params=(Param("name", "string", "API name"),),
        response=(
            Field("name", "the name of the api command"),
            Field("description", "description of the api"),
            Field("isasync", "true if api is asynchronous", "boolean"),
            Field("params", "the list params the api accepts", "list"),
            Field("response", "api response fields", "list"),
        ),
        since="4.1.0",
    ),
)

"""listApis as `cmk sync` reads it: every field its cache's type assertions need, generated from
the gateway's own table of APIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.cloudstack.call import Call
from api.cloudstack.commands.discovery import list_apis
from api.cloudstack.errors import ApiError
from api.cloudstack.spec import TYPES
from api.cloudstack.table import APIS

pytestmark = pytest.mark.unit

# The APIs the gateway must serve, as CloudStack names them.
SERVED = {
    "registerTemplate",
    "listTemplates",
    "updateTemplate",
    "deleteTemplate",
    "prepareTemplate",
    "uploadTemplateDirectDownloadCertificate",
    "revokeTemplateDirectDownloadCertificate",
    "listTemplateDirectDownloadCertificates",
    "provisionTemplateDirectDownloadCertificate",
    "listConfigurations",
    "updateConfiguration",
    "listHosts",
    "listZones",
    "listStoragePools",
    "updateZone",
    "queryAsyncJobResult",
    "listApis",
}


def answer(**params: str) -> dict[str, Any]:
    call = Call(
        APIS["listApis"],
        APIS,
        {"command": "listApis", "listall": "true", **params},
        bus=None,  # type: ignore[arg-type]  # listApis sends nothing
        jobs=None,  # type: ignore[arg-type]
        api_key="k",
        clock=lambda: datetime.now(UTC),
    )
    return list_apis(call)


def update_cache(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """cmk's config.UpdateCache, as Go's unchecked type assertions would run it: a missing
    key or a wrong JSON type here is a panic there (cloudstack-cloudmonkey#211)."""
    cache: dict[str, dict[str, Any]] = {}
    apis = response["api"]
    assert isinstance(apis, list)
    for api in apis:
        assert isinstance(api["name"], str)
        assert isinstance(api["isasync"], bool)
        assert isinstance(api["description"], str)
        assert isinstance(api["response"], list)
        params = api["params"]
        assert isinstance(params, list)
        for param in params:
            assert isinstance(param["name"], str)
            assert isinstance(param["type"], str)
            assert isinstance(param["required"], bool)
            assert isinstance(param["description"], str)
            # CloudMonkey 5.3.3 does int(length): a number, never null.
            assert isinstance(param["length"], int) and not isinstance(param["length"], bool)
            assert isinstance(param.get("related", ""), str)
        for field in api["response"]:
            assert isinstance(field.get("name", ""), str)
        cache[api["name"].lower()] = api
    return cache


def test_every_api_served_is_listed_with_what_cmk_sync_needs() -> None:
    response = answer()
    cache = update_cache(response)
    assert response["count"] == len(response["api"]) == len(APIS)
    assert {api["name"] for api in response["api"]} == SERVED
    for api in response["api"]:
        assert api["params"] or api["name"] == "listZones" or api["name"] == "listApis"
        assert all(p["type"] in TYPES for p in api["params"])
    assert cache["deletetemplate"]["isasync"] and cache["preparetemplate"]["isasync"]
    assert not cache["registertemplate"]["isasync"]


def test_the_listing_is_the_table_itself_not_a_copy_kept_beside_it() -> None:
    listed = {api["name"]: api for api in answer()["api"]}
    for name, api in APIS.items():
        assert [p["name"] for p in listed[name]["params"]] == [p.name for p in api.params]
        required = {p["name"] for p in listed[name]["params"] if p["required"]}
        assert required == {p.name for p in api.params if p.required}


def test_a_verb_and_noun_split_gives_cmks_command_names() -> None:
    names = {api["name"] for api in answer()["api"]}
    split = set()
    for name in names:
        verb = "".join(
            c for c in name[: len(name) - len(name.lstrip("abcdefghijklmnopqrstuvwxyz"))]
        )
        split.add((verb, name[len(verb) :].lower()))
    assert ("upload", "templatedirectdownloadcertificate") in split
    assert ("query", "asyncjobresult") in split


def test_one_api_by_name_and_an_unknown_name_answers_530() -> None:
    (api,) = answer(name="prepareTemplate")["api"]
    hostid = next(p for p in api["params"] if p["name"] == "hostid")
    assert "(directdl)" in hostid["description"]
    with pytest.raises(ApiError) as refused:
        answer(name="deployVirtualMachine")
    assert int(refused.value.errorcode) == 530

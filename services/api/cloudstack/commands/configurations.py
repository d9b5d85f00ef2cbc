"""listConfigurations and updateConfiguration, over settings.*: directdl's global settings."""

from __future__ import annotations

from typing import Any

from api.cloudstack import views
from api.cloudstack.call import Call
from api.cloudstack.errors import ApiError, ApiErrorCode, CsErrorCode
from api.cloudstack.fields import CONFIGURATION
from api.cloudstack.responses import listing, page
from api.cloudstack.spec import PAGING, Api, Param
from directdl.contracts import settings as msg

NAMES = {"name": "name", "value": "value", "keyword": "name"}


def list_configurations(call: Call) -> dict[str, Any]:
    # CloudStack matches `name` as a substring (LIKE %name%), as directdl's keyword does.
    keyword = call.text("name") or call.text("keyword")
    command = call.command(msg.ListSettings, NAMES, keyword=keyword)
    found = msg.SettingList.model_validate(call.bus.call(command))
    category = call.text("category")
    shown = [
        views.configuration_response(view)
        for view in found.items
        if not views.is_hidden(view)  # as CloudStack, which never lists category Hidden
    ]
    if category is not None:
        shown = [item for item in shown if item["category"].lower() == category.lower()]
    return listing(
        "configuration",
        page(shown, call.integer("page"), call.integer("pagesize")),
        count=len(shown),
    )


def update_configuration(call: Call) -> dict[str, Any]:
    name = call.required("name")
    current = _setting(call, name)
    given = call.text("value")
    # CloudStack resets a setting given an empty value or "null".
    value = current.default if given is None or given == "null" else _typed(given)
    command = call.command(msg.UpdateSetting, NAMES, name=name, value=value)
    result = msg.SettingResult.model_validate(call.bus.call(command))
    return {"configuration": views.configuration_response(result.setting)}


def _setting(call: Call, name: str) -> msg.SettingView:
    command = call.command(msg.GetSetting, NAMES, name=name)
    try:
        return msg.SettingResult.model_validate(call.bus.call(command)).setting
    except ApiError as err:
        if err.errorcode is ApiErrorCode.PARAM_ERROR:  # CloudStack's words for an unknown one
            raise ApiError(
                ApiErrorCode.PARAM_ERROR,
                f"Config parameter with name {name[:128]} doesn't exist",
                CsErrorCode.INVALID_PARAMETER_VALUE,
            ) from err
        raise


def _typed(value: str) -> int | float | str:
    """The contract takes numbers as numbers; the owner of the setting checks the rest."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


APIS = (
    Api(
        "listConfigurations",
        "Lists directdl's global settings, as CloudStack lists its configurations.",
        list_configurations,
        params=(
            Param("name", "string", "lists configurations whose name contains this"),
            Param("keyword", "string", "as name"),
            Param("category", "string", "lists configurations by category: Advanced"),
            *PAGING,
        ),
        response=CONFIGURATION,
    ),
    Api(
        "updateConfiguration",
        "Updates a setting; directdl applies it at once, without a restart.",
        update_configuration,
        params=(
            Param("name", "string", "the name of the configuration", required=True),
            Param(
                "value", "string", "the value; empty or null resets it to its default", length=4096
            ),
        ),
        response=CONFIGURATION,
    ),
)

"""SettingView as CloudStack's ConfigurationResponse (listConfigurations, updateConfiguration)."""

from __future__ import annotations

from api.cloudstack.views_common import JsonObject
from directdl.contracts.settings import SettingView
from directdl.settings_catalog import SETTINGS

# The ConfigKeys of DirectDownloadManager.java: CloudStack reports the Configurable's name as
# their component; directdl's own settings keep the service that owns them.
DIRECT_DOWNLOAD_PREFIX = "direct.download."
DIRECT_DOWNLOAD_COMPONENT = "DirectDownloadManager"

Value = str | int | float | bool

# ConfigurationManagerImpl.getConfigurationType's names, by the catalog's type of the setting.
_TYPES: dict[type, str] = {int: "Number", float: "Decimal", str: "String", bool: "Boolean"}


def is_hidden(view: SettingView) -> bool:
    """Whether CloudStack's category would be Hidden, which listConfigurations never lists
    (`sc.addAnd("category", NEQ, "Hidden")`); directdl marks them so itself."""
    return view.hidden


def setting_text(value: Value) -> str:
    """A value as ConfigurationResponse carries it, always a string: `"5000"`, `"0.5"`,
    `"true"`. A whole float loses its `.0`: directdl's catalog reads `30` typed by an admin as
    30.0 for a fractional setting, and CloudStack would echo the text it was given."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _kind(value: Value) -> type:
    if isinstance(value, bool):
        return bool
    if isinstance(value, float):
        return int if value.is_integer() else float
    return type(value)


def setting_type(view: SettingView) -> str:
    """`Number` for a whole-number setting, `Decimal` for a fractional one, `Boolean` or
    `String` otherwise. The view does not carry the type, so the catalog's says it; a setting
    the catalog does not know is judged by its value and default."""
    known = SETTINGS.get(view.name)
    if known is not None:
        return _TYPES[known.kind]
    kinds = {_kind(view.value), _kind(view.default)}
    if kinds <= {int, float}:
        return "Decimal" if float in kinds else "Number"
    if kinds == {bool}:
        return "Boolean"
    return "String"


def _display_text(view: SettingView) -> str:
    # CloudStack's displaytext is a readable name for the UI; the unit is what the value means.
    words = view.name.replace(".", " ")
    readable = words[:1].upper() + words[1:]
    return f"{readable} ({view.unit})" if view.unit else readable


def configuration_response(view: SettingView) -> JsonObject:
    """The ConfigurationResponse of a global setting (no `scope`: directdl has no scoped ones)."""
    direct_download = view.name.startswith(DIRECT_DOWNLOAD_PREFIX)
    return {
        "category": "Hidden" if is_hidden(view) else "Advanced",
        "name": view.name,
        "value": setting_text(view.value),
        "defaultvalue": setting_text(view.default),
        "description": view.description,
        "component": DIRECT_DOWNLOAD_COMPONENT if direct_download else view.owner,
        # directdl applies every setting live, background.task.interval included (CloudStack
        # schedules that one at start-up only, and says isdynamic false).
        "isdynamic": True,
        "type": setting_type(view),
        "displaytext": _display_text(view),
    }

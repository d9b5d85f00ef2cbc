"""Settings messages: list, get and update the global settings, and the changes they make."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts.base import Command, Event, Result

ANY = "any service"  # settings commands go to one shared queue; whichever service takes one

Name = Annotated[str, Field(min_length=1, max_length=255)]
Value = str | int | float


class SettingView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: int | float
    default: int | float
    unit: str
    owner: str = Field(description="The service that persists it and acts on it.")
    hidden: bool
    description: str


class SettingList(Result):
    items: list[SettingView]


class SettingResult(Result):
    setting: SettingView


class ListSettings(Command):
    """Every setting; hidden ones (as CloudStack's listConfigurations hides them) on request."""

    routing_key: ClassVar[str] = "settings.list"
    consumers = (ANY,)
    result = SettingList

    show_hidden: bool = False
    keyword: str | None = None


class GetSetting(Command):
    routing_key: ClassVar[str] = "settings.get"
    consumers = (ANY,)
    result = SettingResult

    name: Name


class UpdateSetting(Command):
    """Change a setting; it takes effect without a restart and emits settings.changed."""

    routing_key: ClassVar[str] = "settings.update"
    consumers = (ANY,)
    emits = ("settings.changed",)
    result = SettingResult

    name: Name
    value: Value


class ApplySetting(Command):
    """An update handed on to the service that owns the setting, which answers the caller."""

    routing_key: ClassVar[str] = "settings.{owner}.apply"
    producers = (ANY,)
    consumers = (ANY,)
    emits = ("settings.changed",)

    name: Name
    value: int | float
    reply_to: str | None = None
    correlation_id: str | None = None


class SettingsChanged(Event):
    """A setting's value, from its owner: on each change, and when the owner starts."""

    routing_key: ClassVar[str] = "settings.changed"
    producers = (ANY,)
    consumers = (ANY,)

    name: str
    value: int | float
    previous: int | float | None
    owner: str
    changed_at: datetime

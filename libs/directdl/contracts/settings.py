"""Settings messages: list, get and update the global settings, and the changes they make."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import MANY, Id, Name, Number, Short, Text, Token

# Numbers, or text (comma-separated CIDRs for the download destination networks).
Value = Text | Number


class SettingView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    value: Value
    default: Value
    unit: Token
    owner: Token = Field(description="The service that persists it and acts on it.")
    hidden: bool
    description: Text


class SettingList(Result):
    items: Annotated[list[SettingView], Field(max_length=MANY)]


class SettingResult(Result):
    setting: SettingView


class ListSettings(Command):
    """Every setting; hidden ones (as CloudStack's listConfigurations hides them) on request."""

    routing_key: ClassVar[str] = "settings.list"
    result = SettingList

    show_hidden: bool = False
    keyword: Short | None = None


class GetSetting(Command):
    routing_key: ClassVar[str] = "settings.get"
    result = SettingResult

    name: Name


class UpdateSetting(Command):
    """Change a setting; it takes effect without a restart and emits settings.changed."""

    routing_key: ClassVar[str] = "settings.update"
    result = SettingResult

    name: Name
    value: Value


class ApplySetting(Command):
    """An update handed on to the service that owns the setting, which answers the caller."""

    routing_key: ClassVar[str] = "settings.{owner}.apply"
    sent_by = senders.Services(senders.SERVICES)

    name: Name
    value: Value
    reply_to: Id | None = None
    correlation_id: Id | None = None


class SettingsChanged(Event):
    """A setting's value, from its owner: on each change, and when the owner starts."""

    routing_key: ClassVar[str] = "settings.changed"
    sent_by = senders.Services(senders.SERVICES)

    name: Name
    value: Value
    previous: Value | None
    owner: Token
    changed_at: datetime

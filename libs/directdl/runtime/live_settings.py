"""Global settings in a running service: its own persisted and acted on, everyone's known.

Settings commands arrive on one queue that every service shares. Whichever service takes one
answers list and get from what it knows (its own values, and the others' from their
settings.changed events), refuses an unknown name or a bad value itself, and hands an update
of another service's setting on to that owner, which answers the caller.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, MetaData, String, Table, select
from sqlalchemy.orm import Session

from directdl.bus.processing import DEFERRED, Deferred, Route, routes
from directdl.contracts import settings as msg
from directdl.contracts.reply import Reply
from directdl.runtime.db import UtcDateTime
from directdl.runtime.uow import UnitOfWork
from directdl.settings_catalog import SETTINGS, lookup, owned_by

if TYPE_CHECKING:
    from directdl.runtime.service import Service

SHARED_QUEUE = "settings.commands"


def settings_table(metadata: MetaData) -> Table:
    """The `settings` table in a service's own MetaData: its own values and everyone else's."""
    return Table(
        "settings",
        metadata,
        Column("name", String(255), primary_key=True),
        Column("value", JSON, nullable=False),
        Column("owner", String(64), nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
    )


class LiveSettings:
    """Current values, in memory for the hot path, in the service's own `settings` table.
    Callable: `settings("direct.download.connect.timeout")` is the value now."""

    def __init__(self, service: str, table: Table) -> None:
        self.service = service
        self.table = table
        self._values = {name: s.default for name, s in SETTINGS.items()}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        with self._lock:
            return self._values[name]

    def load(self, session: Session) -> None:
        with self._lock:
            for name, value in session.execute(select(self.table.c.name, self.table.c.value)):
                if name in self._values:
                    self._values[name] = value

    def _remember(self, name: str, value: int | float | str) -> None:
        with self._lock:
            self._values[name] = value

    def _persist(self, session: Session, name: str, value: int | float | str, owner: str) -> None:
        row = {"value": value, "owner": owner, "updated_at": datetime.now(UTC)}
        updated = session.execute(
            self.table.update().where(self.table.c.name == name).values(**row)
        )
        if not updated.rowcount:  # type: ignore[attr-defined]
            session.execute(self.table.insert().values(name=name, **row))

    # handlers

    def list(self, cmd: msg.ListSettings, uow: UnitOfWork) -> msg.SettingList:
        chosen = [
            s
            for s in SETTINGS.values()
            if (cmd.show_hidden or not s.hidden) and (not cmd.keyword or cmd.keyword in s.name)
        ]
        return msg.SettingList(
            items=[s.view(self(s.name)) for s in sorted(chosen, key=lambda s: s.name)]
        )

    def get(self, cmd: msg.GetSetting, uow: UnitOfWork) -> msg.SettingResult:
        setting = lookup(cmd.name)
        return msg.SettingResult(setting=setting.view(self(setting.name)))

    def update(self, cmd: msg.UpdateSetting, uow: UnitOfWork) -> msg.SettingResult | Deferred:
        setting = lookup(cmd.name)
        value = setting.parse(cmd.value)
        if setting.owner == self.service:
            return self._apply(uow, setting.name, value)
        context = uow.message
        uow.emit(
            msg.ApplySetting(
                name=setting.name,
                value=value,
                reply_to=context.reply_to if context else None,
                correlation_id=context.correlation_id if context else None,
            ),
            routing_key=msg.ApplySetting.address(owner=setting.owner),
        )
        return DEFERRED

    def apply(self, cmd: msg.ApplySetting, uow: UnitOfWork) -> None:
        result = self._apply(uow, cmd.name, lookup(cmd.name).parse(cmd.value))
        if cmd.reply_to:
            uow.reply(cmd.reply_to, cmd.correlation_id, Reply.success(result))

    def changed(self, evt: msg.SettingsChanged, uow: UnitOfWork) -> None:
        if evt.owner == self.service or evt.name not in SETTINGS:
            return
        self._persist(uow.session, evt.name, evt.value, evt.owner)
        uow.after_commit(lambda: self._remember(evt.name, evt.value))

    def _apply(self, uow: UnitOfWork, name: str, value: int | float | str) -> msg.SettingResult:
        previous = self(name)
        self._persist(uow.session, name, value, self.service)
        uow.emit(
            msg.SettingsChanged(
                name=name,
                value=value,
                previous=previous,
                owner=self.service,
                changed_at=datetime.now(UTC),
            )
        )
        uow.after_commit(lambda: self._remember(name, value))
        return msg.SettingResult(setting=lookup(name).view(value))

    # wiring

    def shared_routes(self) -> dict[str, dict[str, Route]]:
        return {
            SHARED_QUEUE: routes(
                (msg.ListSettings, self.list),
                (msg.GetSetting, self.get),
                (msg.UpdateSetting, self.update),
            )
        }

    def command_routes(self) -> dict[str, Route]:
        """For the service's commands queue: updates of its settings handed to it."""
        return {msg.ApplySetting.address(owner=self.service): Route(msg.ApplySetting, self.apply)}

    def event_routes(self) -> dict[str, Route]:
        """For the service's events queue: everyone's changes, to answer list and get."""
        return {msg.SettingsChanged.routing_key: Route(msg.SettingsChanged, self.changed)}

    def announce(self, service: Service) -> None:
        """At start: load what is stored, and tell everyone this service's values."""
        with service.transaction() as uow:
            self.load(uow.session)
            for setting in owned_by(self.service):
                uow.emit(
                    msg.SettingsChanged(
                        name=setting.name,
                        value=self(setting.name),
                        previous=None,
                        owner=self.service,
                        changed_at=datetime.now(UTC),
                    )
                )


def with_settings(
    queues: dict[str, dict[str, Route]], live: LiveSettings
) -> dict[str, dict[str, Route]]:
    """A service's own queues, plus what it handles for the settings it owns and knows."""
    return {
        **queues,
        "commands": queues.get("commands", {}) | live.command_routes(),
        "events": queues.get("events", {}) | live.event_routes(),
    }

"""Global settings in a running service: its own persisted and acted on, everyone's known.

Settings commands arrive on one queue that every service shares. Whichever service takes one
answers list and get from what it knows (its own values, and the others' from their
settings.changed events), refuses an unknown name or a bad value itself, and hands an update
of another service's setting on to that owner, which answers the caller.

Replicas of a service share its database, but a command or an event reaches only one of
them: each replica reads the stored values again every few seconds.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, MetaData, String, Table, select
from sqlalchemy.orm import Session

from directdl.bus.dispatch import Handlers, On
from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts import settings as msg
from directdl.contracts.reply import Reply
from directdl.runtime.db import UtcDateTime
from directdl.runtime.tasks import AtStart, Periodic
from directdl.runtime.uow import UnitOfWork
from directdl.settings_catalog import SETTINGS, lookup, owned_by

if TYPE_CHECKING:
    from directdl.runtime.service import Service

SHARED_QUEUE = "settings.commands"
# The work that tells everyone a service's values as it starts.
ANNOUNCE = "settings.announce"
# How soon a change that another replica of this service stored takes effect here.
RELOAD_SECONDS = 5.0


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

    def remember(self, name: str, value: int | float | str) -> None:
        with self._lock:
            self._values[name] = value

    def persist(self, session: Session, name: str, value: int | float | str, owner: str) -> None:
        row = {"value": value, "owner": owner, "updated_at": datetime.now(UTC)}
        updated = session.execute(
            self.table.update().where(self.table.c.name == name).values(**row)
        )
        if not updated.rowcount:  # type: ignore[attr-defined]
            session.execute(self.table.insert().values(name=name, **row))

    def apply(self, uow: UnitOfWork, name: str, value: int | float | str) -> msg.SettingResult:
        """Persist and act on a value of this service's own setting; tell everyone."""
        previous = self(name)
        self.persist(uow.session, name, value, self.service)
        uow.emit(
            msg.SettingsChanged(
                name=name,
                value=value,
                previous=previous,
                owner=self.service,
                changed_at=datetime.now(UTC),
            )
        )
        uow.after_commit(lambda: self.remember(name, value))
        return msg.SettingResult(setting=lookup(name).view(value))

    def tasks(self) -> tuple[AtStart, Periodic]:
        """What a service with settings runs beside its consumer: the announcement at start,
        then the reload."""
        reload = Periodic("settings.reload", lambda: RELOAD_SECONDS, self.reload, False)
        return AtStart(self.announce), reload

    def reload(self, service: Service[Any]) -> None:
        """Read every stored value again, as stored by any replica of this service."""
        with service.sessions() as session:
            self.load(session)

    def announce(self, service: Service[Any]) -> None:
        """At start: load what is stored, and tell everyone this service's values."""
        with service.transaction(ANNOUNCE) as uow:
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


# The handlers every service with settings has, given its LiveSettings as `live`.


def list_settings(cmd: msg.ListSettings, uow: UnitOfWork, live: LiveSettings) -> msg.SettingList:
    chosen = [
        s
        for s in SETTINGS.values()
        if (cmd.show_hidden or not s.hidden) and (not cmd.keyword or cmd.keyword in s.name)
    ]
    return msg.SettingList(
        items=[s.view(live(s.name)) for s in sorted(chosen, key=lambda s: s.name)]
    )


def get_setting(cmd: msg.GetSetting, uow: UnitOfWork, live: LiveSettings) -> msg.SettingResult:
    setting = lookup(cmd.name)
    return msg.SettingResult(setting=setting.view(live(setting.name)))


def update_setting(
    cmd: msg.UpdateSetting, uow: UnitOfWork, live: LiveSettings
) -> msg.SettingResult | Deferred:
    setting = lookup(cmd.name)
    value = setting.parse(cmd.value)
    if setting.owner == live.service:
        return live.apply(uow, setting.name, value)
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


def apply_setting(cmd: msg.ApplySetting, uow: UnitOfWork, live: LiveSettings) -> None:
    result = live.apply(uow, cmd.name, lookup(cmd.name).parse(cmd.value))
    if cmd.reply_to:
        uow.reply(cmd.reply_to, cmd.correlation_id, Reply.success(result))


def setting_changed(evt: msg.SettingsChanged, uow: UnitOfWork, live: LiveSettings) -> None:
    if evt.owner == live.service or evt.name not in SETTINGS:
        return
    live.persist(uow.session, evt.name, evt.value, evt.owner)
    uow.after_commit(lambda: live.remember(evt.name, evt.value))


SETTINGS_HANDLERS = Handlers(
    # Updates of this service's own settings, handed on by whichever service took them.
    commands={msg.ApplySetting: On(apply_setting, emits=(msg.SettingsChanged,))},
    # Everyone's changes, to answer list and get.
    events={msg.SettingsChanged: On(setting_changed)},
    shared={
        SHARED_QUEUE: {
            msg.ListSettings: On(list_settings),
            msg.GetSetting: On(get_setting),
            msg.UpdateSetting: On(update_setting, emits=(msg.SettingsChanged, msg.ApplySetting)),
        }
    },
    background={ANNOUNCE: (msg.SettingsChanged,)},
)
"""What every service that has global settings handles for them; its table includes it."""

"""A prepare's state: one host after another, at most `concurrency` at a time, each a deploy
of its own; it has ended once every host has."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from directdl.contracts.errors import ErrorCode, MessageError, NotFound
from directdl.contracts.prepare import (
    PreparedHost,
    PrepareResult,
    PrepareState,
    PrepareTemplate,
    TemplatePrepared,
    TemplatePrepareProgress,
)
from registration.domain.host import Host
from registration.domain.template import Template


@dataclass(frozen=True)
class PrepareHost:
    host_id: str
    state: PrepareState = PrepareState.QUEUED
    deploy_id: str | None = None
    code: str | None = None
    message: str | None = None

    def view(self) -> PreparedHost:
        return PreparedHost(
            host_id=self.host_id,
            state=self.state,
            deploy_id=self.deploy_id,
            code=self.code,
            message=self.message,
        )


@dataclass(frozen=True)
class Prepare:
    prepare_id: str
    template_id: str
    zone_id: str
    pool_id: str | None
    concurrency: int  # read once, when the prepare starts
    reply_to: str | None
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    hosts: tuple[PrepareHost, ...] = ()

    @property
    def ended(self) -> bool:
        return all(h.state.ended for h in self.hosts)

    @property
    def done(self) -> int:
        return sum(1 for h in self.hosts if h.state.ended)

    def host(self, host_id: str) -> PrepareHost | None:
        return next((h for h in self.hosts if h.host_id == host_id), None)

    def for_deploy(self, deploy_id: str) -> PrepareHost | None:
        return next((h for h in self.hosts if h.deploy_id == deploy_id), None)

    def next_queued(self) -> PrepareHost | None:
        """The next host to start, when a slot is free: None when none is, or none is left."""
        running = sum(1 for h in self.hosts if h.state is PrepareState.RUNNING)
        if running >= self.concurrency:
            return None
        return next((h for h in self.hosts if h.state is PrepareState.QUEUED), None)

    def result(self) -> PrepareResult:
        return PrepareResult(
            prepare_id=self.prepare_id,
            template_id=self.template_id,
            zone_id=self.zone_id,
            hosts=[h.view() for h in self.hosts],
        )

    def prepared(self) -> TemplatePrepared:
        return TemplatePrepared(**self.result().model_dump())

    def progress(self, host: PrepareHost) -> TemplatePrepareProgress:
        return TemplatePrepareProgress(
            prepare_id=self.prepare_id,
            template_id=self.template_id,
            zone_id=self.zone_id,
            host_id=host.host_id,
            state=host.state,
            deploy_id=host.deploy_id,
            code=host.code,
            message=host.message,
            done=self.done,
            total=len(self.hosts),
        )


def new_prepare(
    cmd: PrepareTemplate,
    template: Template,
    hosts: Iterable[Host],
    concurrency: int,
    now: datetime,
    *,
    reply_to: str | None,
    correlation_id: str | None,
) -> Prepare:
    """A prepare of every host QUEUED: the zone's Up hosts, or those `cmd` names, each of
    which must be an Up host of the zone. Raises NotFound for a template not in the zone or
    a host not in it, UNAVAILABLE for a host not Up or a zone without one."""
    if cmd.zone_id not in template.zone_ids:
        raise NotFound(
            f"template {template.name!r} is not registered in zone {cmd.zone_id!r}",
            details={"field": "zone_id", "value": cmd.zone_id, "zones": list(template.zone_ids)},
        )
    zone = {h.host_id: h for h in hosts if h.zone_id == cmd.zone_id}
    if cmd.host_ids is None:
        chosen = [h for _, h in sorted(zone.items()) if h.is_up(now)]
        if not chosen:
            raise MessageError(
                f"no Up host in zone {cmd.zone_id!r}",
                code=ErrorCode.UNAVAILABLE,
                details={"zone_id": cmd.zone_id},
            )
        host_ids = [h.host_id for h in chosen]
    else:
        host_ids = list(dict.fromkeys(cmd.host_ids))  # in order, each once
        for host_id in host_ids:
            _check_named(cmd.zone_id, host_id, zone.get(host_id), now)
    return Prepare(
        prepare_id=str(uuid.uuid4()),
        template_id=template.id,
        zone_id=cmd.zone_id,
        pool_id=cmd.pool_id,
        concurrency=max(1, concurrency),
        reply_to=reply_to,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
        hosts=tuple(PrepareHost(host_id=h) for h in host_ids),
    )


def _check_named(zone_id: str, host_id: str, host: Host | None, now: datetime) -> None:
    if host is None:
        raise NotFound(
            f"no host {host_id!r} in zone {zone_id!r}",
            details={"field": "host_ids", "value": host_id},
        )
    if not host.is_up(now):
        raise MessageError(
            f"host {host_id!r} is not Up (last heard from {host.last_seen.isoformat()})",
            code=ErrorCode.UNAVAILABLE,
            details={"field": "host_ids", "value": host_id},
        )


def host_changed(
    prepare: Prepare,
    host_id: str,
    state: PrepareState,
    now: datetime,
    *,
    deploy_id: str | None = None,
    code: str | None = None,
    message: str | None = None,
) -> tuple[Prepare, PrepareHost]:
    """`prepare` with the host in `state`; an ended host does not change again."""
    host = prepare.host(host_id)
    if host is None or host.state.ended:
        raise ValueError(f"prepare {prepare.prepare_id} has no unended host {host_id}")
    changed = replace(
        host, state=state, deploy_id=deploy_id or host.deploy_id, code=code, message=message
    )
    hosts = tuple(changed if h is host else h for h in prepare.hosts)
    return replace(prepare, hosts=hosts, updated_at=now), changed

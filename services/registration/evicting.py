"""Evicting template copies from the pools: template.evict, and what hosts say they removed."""

from __future__ import annotations

import structlog

from directdl.contracts.errors import NotFound
from directdl.contracts.pool import (
    CopiesRemoved,
    EvictionRequested,
    EvictTemplate,
    EvictTemplates,
    RemovalReason,
)
from registration.domain.host import Host
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork

log = structlog.get_logger(__name__)


def evict_template(
    cmd: EvictTemplate, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> EvictionRequested:
    """Ask each host the command names to remove the template's copies (or all its copies);
    each says what it removed in template.copies.removed."""
    hosts = targets(uow, cmd)
    template_ids = None if cmd.template_id is None else [cmd.template_id]
    for host in hosts:
        uow.emit(
            EvictTemplates(
                template_ids=template_ids, reason=RemovalReason.REQUESTED, policy=policy.cache
            ),
            routing_key=EvictTemplates.address(host_id=host.host_id),
        )
    return EvictionRequested(
        hosts=[h.host_id for h in hosts], copies=sum(h.copies(cmd.template_id) for h in hosts)
    )


def targets(uow: RegistrationUnitOfWork, cmd: EvictTemplate) -> list[Host]:
    """The known hosts an eviction goes to: the host named (in the zone named, if one is),
    else the zone's, else those of the template's zones and any that holds a copy of it."""
    if cmd.host_id is not None:
        host = uow.hosts.get(cmd.host_id)
        if host is None or cmd.zone_id not in (None, host.zone_id):
            where = f" in zone {cmd.zone_id!r}" if cmd.zone_id is not None else ""
            raise NotFound(
                f"no host {cmd.host_id!r} is known{where}",
                details={"field": "host_id", "value": cmd.host_id},
            )
        return [host]
    if cmd.zone_id is not None:
        hosts = uow.hosts.in_zone(cmd.zone_id)
        if not hosts:
            raise NotFound(
                f"no host is known in zone {cmd.zone_id!r}",
                details={"field": "zone_id", "value": cmd.zone_id},
            )
        return hosts
    template_id = cmd.template_id
    assert template_id is not None  # the command names a template, a host or a zone
    # A template deleted from the catalogue may still have copies: those hosts are found by
    # what they last said they hold. Hosts outside its zones that hold one are asked too.
    template = uow.templates.get(template_id)
    zones = template.zone_ids if template is not None else ()
    hosts = [h for h in uow.hosts.in_zone() if h.zone_id in zones or h.holds(template_id)]
    if template is None and not hosts:
        raise NotFound(
            f"no template with id {template_id!r}, and no known host holds a copy of it",
            details={"field": "template_id", "value": template_id},
        )
    return hosts


def copies_removed(evt: CopiesRemoved, uow: RegistrationUnitOfWork) -> None:
    """Forget the copies a host removed from a pool, so that no deploy prefers that host for
    a copy it no longer has before its next inventory says so. An inventory sent before the
    removal and still behind in `registration.hosts` may list them again for a moment: the
    host's next one, sent because the removal changed its digest, follows it and settles it."""
    log.info(
        "pool.copies_removed",
        host_id=evt.host_id,
        pool_id=evt.pool_id,
        removed=[c.template_id for c in evt.removed],
        kept=[c.template_id for c in evt.kept],
        freed_bytes=evt.freed_bytes,
    )
    host = uow.hosts.get(evt.host_id)
    if host is None:
        return  # not known yet: its first inventory will list what it holds then
    uow.hosts.save_holdings(host.without(evt.pool_id, (c.template_id for c in evt.removed)))

"""Registration handlers: functions of (message, unit of work, dependencies), and the table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from directdl.bus.dispatch import Every, Handlers, On, OnBatch
from directdl.contracts import deploy, download, host, pool, prepare
from directdl.contracts import template as msg
from directdl.contracts.errors import Conflict, NotFound
from directdl.contracts.template import SourceProtocol
from directdl.destinations import DestinationPolicy
from directdl.runtime.announce import ANNOUNCE_HANDLERS
from directdl.runtime.live_settings import SETTINGS_HANDLERS
from registration import deploying, evicting, heartbeats, history, preparing
from registration.adapters.repository import TemplateFilter
from registration.domain.destination import check_destination
from registration.domain.template import (
    Template,
    change_type,
    new_template,
    rename,
    request_headers,
)
from registration.uow import RegistrationUnitOfWork

SizeOf = Callable[[str, SourceProtocol, dict[str, str]], int | None]
"""Checks that a template's URL answers and returns its size; see adapters.url_check."""
Destinations = Callable[[], DestinationPolicy]
"""The download destination policy now, from the live settings."""


def register_template(
    cmd: msg.RegisterTemplate,
    uow: RegistrationUnitOfWork,
    size_of: SizeOf,
    destinations: Destinations = DestinationPolicy,
) -> msg.TemplateResult:
    template = new_template(cmd)
    check_destination(template.url, destinations())  # even unvalidated: nothing connects yet
    _check_name_free(uow, template.name, template.zone_ids)
    if cmd.validate_url:
        size = size_of(template.url, template.protocol, request_headers(template))
        template = replace(template, size=size)
    uow.templates.add(template)
    uow.emit(msg.TemplateRegistered(template=template.view()))
    return msg.TemplateResult(template=template.view())


def list_templates(cmd: msg.ListTemplates, uow: RegistrationUnitOfWork) -> msg.TemplatePage:
    where = TemplateFilter(cmd.zone_id, cmd.template_type, cmd.name, cmd.keyword, cmd.id_prefix)
    items, total = uow.templates.page(where, cmd.page, cmd.page_size)
    return msg.TemplatePage(
        items=[t.view() for t in items], total=total, page=cmd.page, page_size=cmd.page_size
    )


def get_template(cmd: msg.GetTemplate, uow: RegistrationUnitOfWork) -> msg.TemplateResult:
    return msg.TemplateResult(template=_existing(uow, cmd.id).view())


def update_template(cmd: msg.UpdateTemplate, uow: RegistrationUnitOfWork) -> msg.TemplateResult:
    template = _existing(uow, cmd.id)
    changed: list[str] = []
    if cmd.name is not None and cmd.name != template.name:
        _check_name_free(uow, cmd.name, template.zone_ids, except_id=template.id)
        template = rename(template, cmd.name)
        changed.append("name")
    if cmd.template_type is not None and cmd.template_type is not template.template_type:
        template = change_type(template, cmd.template_type)
        changed.append("template_type")
    if changed:
        uow.templates.update(template)
        uow.emit(msg.TemplateUpdated(template=template.view(), changed=changed))
    return msg.TemplateResult(template=template.view())


def delete_template(cmd: msg.DeleteTemplate, uow: RegistrationUnitOfWork) -> msg.TemplateResult:
    template = _existing(uow, cmd.id)
    uow.templates.delete(template.id)
    uow.emit(
        msg.TemplateDeleted(id=template.id, name=template.name, zone_ids=list(template.zone_ids))
    )
    return msg.TemplateResult(template=template.view())


def _existing(uow: RegistrationUnitOfWork, template_id: str) -> Template:
    template = uow.templates.get(template_id)
    if template is None:
        raise NotFound(f"no template with id {template_id!r}", details={"id": template_id})
    return template


def _check_name_free(
    uow: RegistrationUnitOfWork, name: str, zone_ids: tuple[str, ...], except_id: str = ""
) -> None:
    taken = uow.templates.names_taken(name, zone_ids, except_id)
    if taken:
        raise Conflict(
            f"a template named {name!r} already exists in zone {', '.join(taken)}",
            details={"field": "name", "value": name, "zones": taken},
        )


HANDLERS = (
    Handlers(
        commands={
            msg.RegisterTemplate: On(register_template, emits=(msg.TemplateRegistered,)),
            msg.ListTemplates: On(list_templates),
            msg.GetTemplate: On(get_template),
            msg.UpdateTemplate: On(update_template, emits=(msg.TemplateUpdated,)),
            msg.DeleteTemplate: On(delete_template, emits=(msg.TemplateDeleted,)),
            pool.EvictTemplate: On(evicting.evict_template, emits=(pool.EvictTemplates,)),
            deploy.DeployTemplate: On(deploying.deploy_template, emits=deploying.MOVES_ON),
            deploy.ListDeploys: On(history.list_deploys),
            deploy.GetDeploy: On(history.get_deploy),
            host.ListHosts: On(heartbeats.list_hosts),
            prepare.PrepareTemplate: On(preparing.prepare_template, emits=preparing.PREPARES),
        },
        events={
            download.DownloadCompleted: On(
                deploying.download_completed,
                (*deploying.MOVES_ON, deploy.TemplateDeployed, *preparing.FANS_OUT),
            ),
            download.DownloadFailed: On(
                deploying.download_failed, (*deploying.MOVES_ON, *preparing.FANS_OUT)
            ),
            download.DownloadsRecovered: On(deploying.downloads_recovered, deploying.RECOVERS),
            download.DownloadProgress: On(history.download_progress, idempotent=True),
            pool.CopiesRemoved: On(evicting.copies_removed),
        },
        timers={
            "watchdog": Every(
                "watchdog_interval", heartbeats.fail_silent_hosts, heartbeats.GIVES_UP
            )
        },
        # One queue for both, so that an inventory is handled before the beat carrying its
        # digest; thousands of hosts' beats are handled hundreds at a time.
        batched={
            "hosts": {
                host.HostInventory: OnBatch(heartbeats.host_inventories),
                host.HostHeartbeat: OnBatch(heartbeats.host_beats, emits=heartbeats.BEATS),
            }
        },
    )
    | SETTINGS_HANDLERS
    | ANNOUNCE_HANDLERS
)
"""What registration does with each message, and what each handler may publish."""

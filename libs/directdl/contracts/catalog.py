"""Every message of the contract, in one list: the source of the AsyncAPI document."""

from __future__ import annotations

from directdl.contracts import certificate, deploy, download, host, settings, sync, template
from directdl.contracts.base import Message

MESSAGES: tuple[type[Message], ...] = (
    template.RegisterTemplate,
    template.ListTemplates,
    template.GetTemplate,
    template.UpdateTemplate,
    template.DeleteTemplate,
    template.TemplateRegistered,
    template.TemplateUpdated,
    template.TemplateDeleted,
    deploy.DeployTemplate,
    deploy.TemplateDeployed,
    deploy.TemplateDeployFailed,
    host.HostHeartbeat,
    host.ListHosts,
    download.DownloadTemplate,
    download.DownloadProgress,
    download.DownloadCompleted,
    download.DownloadFailed,
    certificate.UploadCertificate,
    certificate.RevokeCertificate,
    certificate.ListCertificates,
    certificate.ProvisionCertificate,
    certificate.DeleteCertificate,
    certificate.CertificateUploaded,
    certificate.CertificateRevoked,
    certificate.CertificateDeleted,
    certificate.CertificateExpiring,
    certificate.InstallCertificate,
    certificate.RemoveCertificate,
    certificate.CertificateInstalled,
    certificate.CertificateRemoved,
    certificate.CertificateFailed,
    settings.ListSettings,
    settings.GetSetting,
    settings.UpdateSetting,
    settings.ApplySetting,
    settings.SettingsChanged,
    sync.RunSync,
    sync.SyncTick,
    sync.SyncRunCompleted,
    sync.EnableZone,
    sync.DisableZone,
)

BY_ROUTING_KEY: dict[str, type[Message]] = {m.routing_key: m for m in MESSAGES}

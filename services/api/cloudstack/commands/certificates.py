"""The four direct-download certificate APIs, over cert.*."""

from __future__ import annotations

from typing import Any

from api.cloudstack import views
from api.cloudstack.call import Call
from api.cloudstack.errors import ApiError, ApiErrorCode, CsErrorCode
from api.cloudstack.fields import CERTIFICATE, HOST_STATUS
from api.cloudstack.responses import listing
from api.cloudstack.spec import Api, Param
from directdl.contracts import certificate as cert

NAMES = {
    "id": "id",
    "name": "name",
    "zone_id": "zoneid",
    "hypervisor": "hypervisor",
    "certificate": "certificate",
    "host_id": "hostid",
    "list_hosts": "listhosts",
}
HOST_STATUS_OBJECT = "directdownloadcertificatehoststatus"


def upload(call: Call) -> dict[str, Any]:
    _check_kvm(call.required("hypervisor"))
    command = call.command(
        cert.UploadCertificate,
        NAMES,
        name=call.required("name"),
        zone_id=call.required("zoneid"),
        hypervisor="KVM",
        certificate=call.required("certificate"),
        host_id=call.text("hostid"),
    )
    outcome = cert.CertificateOutcome.model_validate(call.bus.call(command))
    return {
        "uploadtemplatedirectdownloadcertificate": views.certificate_response(
            outcome.certificate, outcome.hosts
        )
    }


def revoke(call: Call) -> dict[str, Any]:
    certificate_id, name, hypervisor = call.text("id"), call.text("name"), call.text("hypervisor")
    if certificate_id is None and (name is None or hypervisor is None):
        raise ApiError(
            ApiErrorCode.PARAM_ERROR,
            "Please specify the hypervisor and the certificate name to revoke or the "
            "certificate ID",
            CsErrorCode.INVALID_PARAMETER_VALUE,
        )
    if hypervisor is not None:
        _check_kvm(hypervisor)
    command = call.command(
        cert.RevokeCertificate,
        NAMES,
        id=certificate_id,
        name=name,
        hypervisor=hypervisor and "KVM",
        zone_id=call.required("zoneid"),
        host_id=call.text("hostid"),
    )
    outcome = cert.CertificateOutcome.model_validate(call.bus.call(command))
    # A host that did not hold it is SKIPPED by directdl; CloudStack leaves such hosts out,
    # which is how a revocation already done answers an empty list.
    asked = [h for h in outcome.hosts if h.state is not cert.HostCertState.SKIPPED or h.reason]
    return listing(HOST_STATUS_OBJECT, [views.host_status_response(h) for h in asked])


def list_certificates(call: Call) -> dict[str, Any]:
    list_hosts = bool(call.boolean("listhosts", False))
    command = call.command(
        cert.ListCertificates,
        NAMES,
        id=call.text("id"),
        zone_id=call.text("zoneid"),
        list_hosts=list_hosts,
    )
    found = cert.CertificateList.model_validate(call.bus.call(command))
    # directdl sends each certificate's hosts only when asked: hostsmap only with listhosts.
    items = [views.certificate_entry_response(entry) for entry in found.items]
    return listing("directdownloadcertificate", items)


def provision(call: Call) -> dict[str, Any]:
    command = call.command(
        cert.ProvisionCertificate,
        NAMES,
        id=call.required("id"),
        host_id=call.required("hostid"),
    )
    outcome = cert.CertificateOutcome.model_validate(call.bus.call(command))
    host = next((h for h in outcome.hosts if h.host_id == command.host_id), None)
    if host is None:  # directdl answers for the host it was asked about; never for another
        raise ApiError(
            ApiErrorCode.INTERNAL_ERROR,
            f"directdl's answer names no outcome for host {command.host_id}",
            CsErrorCode.CLOUD_RUNTIME,
        )
    return {HOST_STATUS_OBJECT: views.host_status_response(host)}


def _check_kvm(hypervisor: str) -> None:
    if hypervisor.upper() != "KVM":  # CloudStack's own words
        raise ApiError(
            ApiErrorCode.PARAM_ERROR,
            "Currently supporting KVM hosts only",
            CsErrorCode.INVALID_PARAMETER_VALUE,
        )


_ZONE = Param("zoneid", "uuid", "the zone of the certificate", related="listZones")
_HOST = Param("hostid", "uuid", "(optional) the host ID", related="listHosts")
APIS = (
    Api(
        "uploadTemplateDirectDownloadCertificate",
        "Upload a certificate for HTTPS direct template download on KVM hosts",
        upload,
        params=(
            Param("certificate", "string", "SSL certificate", required=True, length=65535),
            Param("name", "string", "Name for the uploaded certificate", required=True),
            Param("hypervisor", "string", "Hypervisor type: KVM", required=True),
            Param(
                "zoneid", "uuid", "Zone to upload certificate", required=True, related="listZones"
            ),
            Param(
                "hostid",
                "uuid",
                "(optional) the host ID to upload certificate",
                related="listHosts",
            ),
        ),
        response=CERTIFICATE,
        since="4.11.0",
    ),
    Api(
        "revokeTemplateDirectDownloadCertificate",
        "Revoke a direct download certificate from hosts in a zone",
        revoke,
        params=(
            Param(
                "id",
                "uuid",
                "id of the certificate",
                related="listTemplateDirectDownloadCertificates",
            ),
            Param("name", "string", "(optional) alias of the SSL certificate"),
            Param("hypervisor", "string", "(optional) hypervisor type: KVM"),
            Param(
                "zoneid",
                "uuid",
                "(optional) zone to revoke certificate",
                required=True,
                related="listZones",
            ),
            _HOST,
        ),
        response=HOST_STATUS,
        since="4.13",
    ),
    Api(
        "listTemplateDirectDownloadCertificates",
        "List the uploaded certificates for direct download templates",
        list_certificates,
        params=(
            Param(
                "id",
                "uuid",
                "list direct download certificate by ID",
                related="listTemplateDirectDownloadCertificates",
            ),
            _ZONE,
            Param("listhosts", "boolean", "if set to true: include the hosts' status"),
        ),
        response=CERTIFICATE,
        since="4.17.0",
    ),
    Api(
        "provisionTemplateDirectDownloadCertificate",
        "Provisions a host with a direct download certificate",
        provision,
        params=(
            Param(
                "id",
                "uuid",
                "the id of the direct download certificate to provision",
                required=True,
                related="listTemplateDirectDownloadCertificates",
            ),
            Param(
                "hostid",
                "uuid",
                "the host to provision the certificate",
                required=True,
                related="listHosts",
            ),
        ),
        response=HOST_STATUS,
        since="4.17.0",
    ),
)

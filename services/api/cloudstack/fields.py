"""The response fields each API lists in listApis: what cmk shows, filters and completes on."""

from __future__ import annotations

from api.cloudstack.spec import Field

TEMPLATE = (
    Field("id", "the template ID"),
    Field("name", "the template name"),
    Field("displaytext", "the template display text"),
    Field("url", "the URL the hosts download it from, with any credentials hidden"),
    Field("format", "the format of the template"),
    Field("hypervisor", "the hypervisor on which the template runs"),
    Field("templatetype", "the type of the template"),
    Field(
        "directdownload",
        "KVM only: true, the template is downloaded straight to primary storage",
        "boolean",
    ),
    Field("checksum", "the checksum of the template, without its algorithm"),
    Field("size", "the size of the template in bytes", "long"),
    Field("status", "the status of the template"),
    Field("isready", "true if the template is ready to be deployed", "boolean"),
    Field("zoneid", "the ID of the zone for this template"),
    Field("zonename", "the name of the zone for this template"),
    Field("created", "the date this template was created", "date"),
    Field("details", "additional key/value details tied with the template", "map"),
    Field(
        "downloaddetails",
        "the primary storage pools that hold the template",
        "list",
        (Field("datastore", "the pool"), Field("downloadState", "DOWNLOADED")),
    ),
)

HOST_STATUS = (
    Field("hostid", "the ID of the host"),
    Field("hostname", "the name of the host"),
    Field("status", "UPLOADED, REVOKED, FAILED or SKIPPED"),
    Field("details", "why, when it failed or was skipped"),
)

CERTIFICATE = (
    Field("id", "the direct download certificate id"),
    Field("alias", "the direct download certificate alias"),
    Field("zoneid", "the zone id where the certificate is uploaded"),
    Field("zonename", "the zone name where the certificate is uploaded"),
    Field("subject", "the direct download certificate subject"),
    Field("issuer", "the direct download certificate issuer"),
    Field("serialnum", "the direct download certificate serial num"),
    Field("validity", "the direct download certificate validity"),
    Field("version", "the direct download certificate version"),
    Field("hypervisor", "the hypervisor of the hosts where the certificate is uploaded"),
    Field("hostsmap", "the hosts where the certificate is uploaded to", "list", HOST_STATUS),
)

CONFIGURATION = (
    Field("name", "the name of the configuration"),
    Field("value", "the value of the configuration"),
    Field("defaultvalue", "the default value of the configuration"),
    Field("category", "the category of the configuration"),
    Field("description", "the description of the configuration"),
    Field("component", "the component that owns the configuration"),
    Field("isdynamic", "true if the configuration applies without a restart", "boolean"),
    Field("type", "the type of the configuration value"),
)

HOST = (
    Field("id", "the ID of the host"),
    Field("name", "the name of the host"),
    Field("state", "the state of the host"),
    Field("type", "the host type"),
    Field("hypervisor", "the host hypervisor"),
    Field("zoneid", "the Zone ID of the host"),
    Field("zonename", "the Zone name of the host"),
    Field("clusterid", "the cluster ID of the host"),
    Field("lastpinged", "the date and time the host was last heard from", "date"),
)

STORAGE_POOL = (
    Field("id", "the ID of the storage pool"),
    Field("name", "the name of the storage pool"),
    Field("zoneid", "the Zone ID of the storage pool"),
    Field("clusterid", "the ID of the cluster for the storage pool"),
    Field("hostid", "(directdl) the host whose pool it is"),
    Field("state", "the state of the storage pool"),
    Field("scope", "the scope of the storage pool: HOST"),
    Field("disksizetotal", "the total disk size of the storage pool", "long"),
    Field("disksizeused", "the used disk size of the storage pool", "long"),
)

ZONE = (
    Field("id", "Zone id"),
    Field("name", "Zone name"),
    Field("allocationstate", "the allocation state of the zone: Enabled or Disabled"),
)

JOB = (
    Field("jobid", "the UUID of the async job"),
    Field("jobstatus", "0 pending, 1 succeeded, 2 failed", "integer"),
    Field("jobprocstatus", "a deploy's progress, in percent", "integer"),
    Field("jobresultcode", "the result code of the job", "integer"),
    Field("jobresult", "the result of the job", "object"),
    Field("cmd", "the async command executed"),
    Field("created", "the created date of the job", "date"),
)

SUCCESS = (
    Field("success", "true if the operation is executed successfully", "boolean"),
    Field("displaytext", "any text associated with the success or failure"),
)

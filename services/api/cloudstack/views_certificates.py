"""CertificateView and HostOutcome as CloudStack's DirectDownloadCertificateResponse and
DirectDownloadCertificateHostStatusResponse."""

from __future__ import annotations

import string

from cryptography import x509

from api.cloudstack.views_common import JsonObject, compact, java_date
from directdl.contracts.certificate import CertificateEntry, CertificateView, HostOutcome

# What sun.security.x509.AVAKeyword prints for an OID in X500Name.toString(); where two
# keywords share an OID (S/ST, EMAIL/EMAILADDRESS, DNQUALIFIER/DNQ) the later one wins there.
_JAVA_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "T",
    "1.3.6.1.4.1.42.2.11.2.1": "IP",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "2.5.4.46": "DNQ",
    "2.5.4.4": "SURNAME",
    "2.5.4.42": "GIVENNAME",
    "2.5.4.43": "INITIALS",
    "2.5.4.44": "GENERATION",
    "1.2.840.113549.1.9.1": "EMAILADDRESS",
    "0.9.2342.19200300.100.1.1": "UID",
    "2.5.4.5": "SERIALNUMBER",
}
# AVA.toKeywordValueString: these make Java quote the whole value.
_ESCAPEES = frozenset(',+=\n<>#;\\"')
_PRINTABLE = frozenset(string.ascii_letters + string.digits + " '()+,-./:=?")
_WHITE = frozenset(" \n")


def _java_value(text: str) -> str:
    """An attribute value as AVA.toKeywordValueString writes it: quoted when it holds a special
    character, leading or trailing white space, or two white spaces in a row."""
    already_quoted = len(text) > 1 and text[0] == text[-1] == '"'
    out: list[str] = []
    quote = previous_white = False
    for index, char in enumerate(text):
        if already_quoted and index in (0, len(text) - 1):
            out.append(char)
            continue
        if char in _PRINTABLE or char in _ESCAPEES:
            quote = quote or char in _ESCAPEES or (index == 0 and char in _WHITE)
            if char in _WHITE:
                quote = quote or previous_white
                previous_white = True
            else:
                if char in '"\\':
                    out.append("\\")
                previous_white = False
        else:
            previous_white = False
        out.append(char)
    body = "".join(out)
    quote = quote or body[-1:] in _WHITE
    return f'"{body}"' if quote and not already_quoted else body


def _java_attribute(attribute: x509.NameAttribute[str | bytes]) -> str:
    oid = attribute.oid.dotted_string
    keyword = _JAVA_KEYWORDS.get(oid, f"OID.{oid}")
    if isinstance(attribute.value, bytes):
        # Java writes the DER of a value it cannot read as a string; the value's bytes are as
        # near as the parsed name allows.
        return f"{keyword}=#{attribute.value.hex().upper()}"
    return f"{keyword}={_java_value(attribute.value)}"


def java_dn(rfc4514: str) -> str:
    """A distinguished name as CloudStack shows it, X509Certificate.getSubjectDN().toString():
    directdl stores `CN=sample-ca,O=Example,C=US` (RFC 4514), Java prints
    `CN=sample-ca, O=Example, C=US`. A name that does not parse is returned as it is."""
    try:
        name = x509.Name.from_rfc4514_string(rfc4514)
    except ValueError:
        return rfc4514
    # Both forms list the RDNs last first (X500Name.generateDN walks them backwards), so only
    # the separators, keywords and quoting differ.
    return ", ".join(
        " + ".join(_java_attribute(attribute) for attribute in rdn) for rdn in reversed(name.rdns)
    )


def serial_decimal(serial: str) -> str:
    """The serial number in decimal, as Java's BigInteger.toString() prints it. directdl stores
    it in upper-case hex (certificate.domain.certificate, `f"{serial_number:X}"`); colons or
    spaces between its bytes are tolerated. Text that is not hex is returned as it is."""
    try:
        return str(int(serial.replace(":", "").replace(" ", ""), 16))
    except ValueError:
        return serial


def validity(view: CertificateView) -> str:
    """DirectDownloadManagerImpl's `String.format("From: [%s] - To: [%s]", notBefore, notAfter)`."""
    return f"From: [{java_date(view.not_before)}] - To: [{java_date(view.not_after)}]"


def host_map_entry(outcome: HostOutcome) -> JsonObject:
    """One `hostsmap` entry: CloudStack writes `details` always there, "" when all went well."""
    return {
        "hostid": outcome.host_id,
        # directdl knows a host by its id alone, which is its name too.
        "hostname": outcome.host_id,
        "status": outcome.state.value,
        "details": outcome.reason or "",
    }


def certificate_response(view: CertificateView, hosts: list[HostOutcome] | None) -> JsonObject:
    """The DirectDownloadCertificateResponse; `hostsmap` only when hosts are given (upload, or
    listTemplateDirectDownloadCertificates with listhosts=true)."""
    return compact(
        {
            "id": view.id,
            "alias": view.alias,
            "zoneid": view.zone_id,
            "zonename": view.zone_id,
            # X509Certificate.getVersion(); directdl does not record it, and every CA
            # certificate a KVM host would trust today is an X.509 v3 one.
            "version": "3",
            "subject": java_dn(view.subject),
            "issuer": java_dn(view.issuer),
            "serialnum": serial_decimal(view.serial),
            "validity": validity(view),
            "hypervisor": view.hypervisor,
            # directdl's own: CloudStack has no field for them, and clients ignore unknown keys.
            "revoked": view.revoked,
            "fingerprint_sha256": view.fingerprint_sha256,
            "hostsmap": None if hosts is None else [host_map_entry(host) for host in hosts],
        }
    )


def certificate_entry_response(entry: CertificateEntry) -> JsonObject:
    """One listTemplateDirectDownloadCertificates item."""
    return certificate_response(entry.certificate, entry.hosts)


def host_status_response(outcome: HostOutcome) -> JsonObject:
    """The DirectDownloadCertificateHostStatusResponse of revoke and provision: unlike a
    `hostsmap` entry, `details` only when the host gave a reason."""
    return compact(
        {
            "hostid": outcome.host_id,
            "hostname": outcome.host_id,
            "status": outcome.state.value,
            "details": outcome.reason or None,
        }
    )

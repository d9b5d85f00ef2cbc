"""Every root CA Debian ships, inside its validity window, is accepted for upload."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from certificate.domain.certificate import parse_certificate
from directdl.bus.memory import InMemoryBus
from directdl.contracts import certificate as msg
from directdl.contracts.errors import MessageError
from directdl_testing.messages import heartbeat

pytestmark = [
    pytest.mark.unit,
    # Some shipped roots carry a negative serial; loading them warns and must still work.
    pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive"),
]

BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.DOTALL)


def current_roots() -> list[tuple[str, str]]:
    """(subject, PEM) of each bundled certificate that is valid now."""
    if not BUNDLE.is_file():
        pytest.fail(
            f"{BUNDLE} is missing: install Debian's ca-certificates package "
            "(apt-get install ca-certificates) so the shipped roots can be checked"
        )
    now = datetime.now(UTC)
    roots = []
    for text in _BLOCK.findall(BUNDLE.read_text("ascii")):
        cert = x509.load_pem_x509_certificate(text.encode("ascii"))
        if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            roots.append((cert.subject.rfc4514_string(), text))
    return roots


def test_the_bundle_holds_the_roots_that_once_were_refused() -> None:
    """So the test below cannot pass by reading an empty or a different file."""
    subjects = {subject for subject, _ in current_roots()}
    assert len(subjects) >= 100, len(subjects)
    assert "CN=DigiCert Global Root CA,OU=www.digicert.com,O=DigiCert Inc,C=US" in subjects


def test_every_current_root_in_the_bundle_is_accepted() -> None:
    roots = current_roots()
    refused = {}
    for subject, text in roots:
        try:
            parse_certificate(text, datetime.now(UTC))
        except MessageError as err:
            refused[subject] = err.message
    assert not refused, f"{len(refused)} of {len(roots)} bundled roots refused: {refused}"


def test_every_current_root_in_the_bundle_is_uploaded_through_the_handler(
    bus: InMemoryBus,
) -> None:
    # A host that is Down makes the zone known without any install to wait for.
    bus.submit(heartbeat("h1", zone_id="zone-1", state="Down"))
    roots = current_roots()
    refused = {}
    for number, (subject, text) in enumerate(roots):
        reply = bus.call(
            msg.UploadCertificate(
                name=f"root-{number}", zone_id="zone-1", hypervisor="KVM", certificate=text
            )
        )
        if reply.error is not None:
            refused[subject] = reply.error.message
    assert not refused, f"{len(refused)} of {len(roots)} bundled roots refused: {refused}"
    listed = bus.call(msg.ListCertificates()).result
    assert listed is not None and len(listed["items"]) == len(roots)

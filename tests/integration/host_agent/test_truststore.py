"""TrustStore against the real keytool: each reads what the other wrote."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from directdl_testing.certs import make_self_signed
from host_agent.truststore import (
    InstallStatus,
    RemoveStatus,
    TrustStore,
    TrustStoreError,
    fingerprint,
)

pytestmark = pytest.mark.integration

PASSWORD = "changeit"
KEYTOOL = ["keytool", "-J-Duser.language=en", "-J-Duser.country=US"]
# "alias, Nov 25, 2026, trustedCertEntry, " then "Certificate fingerprint (SHA-256): AB:CD:..."
_LISTED = re.compile(
    r"^(?P<alias>[^,\n]+), [^\n]*, (?P<kind>\w+), ?\n"
    r"Certificate fingerprint \(SHA-256\): (?P<fingerprint>[0-9A-F:]+)$",
    re.MULTILINE,
)


class Cert:
    def __init__(self, name: str) -> None:
        pem, key = make_self_signed(name, ["DNS:localhost", "IP:127.0.0.1"], key_size=2048)
        self.pem, self.key_pem = pem.decode(), key
        self.cert = x509.load_pem_x509_certificate(pem)
        self.fingerprint = fingerprint(self.cert)


@pytest.fixture(scope="module")
def certs() -> list[Cert]:
    return [Cert(f"ca-{n}") for n in range(10)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "agent" / "cloud.p12"


def keytool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEYTOOL, *args], capture_output=True, text=True, check=True, timeout=60)


def keytool_list(path: Path) -> dict[str, tuple[str, str]]:
    """alias -> (entry type, SHA-256 fingerprint), as `keytool -list` prints them."""
    out = keytool("-list", "-keystore", str(path), "-storepass", PASSWORD).stdout
    listed = {m["alias"]: (m["kind"], m["fingerprint"]) for m in _LISTED.finditer(out)}
    count = re.search(r"Your keystore contains (\d+) entr", out)
    assert count and int(count[1]) == len(listed), out
    return listed


def keytool_import(path: Path, alias: str, cert: Cert, tmp_path: Path) -> None:
    pem = tmp_path / f"{alias}.pem"
    pem.write_text(cert.pem)
    keytool(
        "-importcert", "-noprompt", "-trustcacerts", "-alias", alias, "-file", str(pem),
        "-keystore", str(path), "-storetype", "PKCS12", "-storepass", PASSWORD,
    )  # fmt: skip


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_keytool_lists_both_installed_aliases_as_trusted(path: Path, certs: list[Cert]) -> None:
    store = TrustStore(path, PASSWORD)
    first = store.install("alpha", certs[0].pem)
    second = store.install("beta", certs[1].pem)

    assert (first.status, first.fingerprint) == (InstallStatus.INSTALLED, certs[0].fingerprint)
    assert second.status == "installed"
    assert keytool_list(path) == {
        "alpha": ("trustedCertEntry", certs[0].fingerprint),
        "beta": ("trustedCertEntry", certs[1].fingerprint),
    }
    assert store.inventory() == [("alpha", certs[0].fingerprint), ("beta", certs[1].fingerprint)]
    assert path.stat().st_mode & 0o777 == 0o600


def test_installing_the_same_certificate_again_changes_nothing(
    path: Path, certs: list[Cert]
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)
    bundle = store.pem_bundle_path()
    assert bundle is not None
    before = (path.read_bytes(), path.stat().st_mtime_ns, bundle.stat().st_mtime_ns)

    outcome = store.install("ALPHA", certs[0].pem)

    assert outcome.status == InstallStatus.UNCHANGED
    assert outcome.replaced_fingerprint is None
    assert (path.read_bytes(), path.stat().st_mtime_ns, bundle.stat().st_mtime_ns) == before


def test_installing_another_certificate_under_an_alias_replaces_it(
    path: Path, certs: list[Cert]
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)
    store.install("beta", certs[1].pem)

    outcome = store.install("alpha", certs[2].pem)

    assert outcome.status == InstallStatus.REPLACED
    assert (outcome.fingerprint, outcome.replaced_fingerprint) == (
        certs[2].fingerprint,
        certs[0].fingerprint,
    )
    assert keytool_list(path) == {
        "alpha": ("trustedCertEntry", certs[2].fingerprint),
        "beta": ("trustedCertEntry", certs[1].fingerprint),
    }


def test_remove_takes_the_alias_out_and_an_absent_alias_is_reported(
    path: Path, certs: list[Cert]
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)
    store.install("beta", certs[1].pem)

    removed = store.remove("alpha")
    again = store.remove("alpha")

    assert (removed.status, removed.fingerprint) == (RemoveStatus.REMOVED, certs[0].fingerprint)
    assert (again.status, again.fingerprint) == (RemoveStatus.ABSENT, None)
    assert keytool_list(path) == {"beta": ("trustedCertEntry", certs[1].fingerprint)}
    assert store.remove("never-there").status == "absent"
    # cryptography cannot write a store with no entries, so the last removal deletes the file
    assert store.remove("beta").status == "removed"
    assert not path.exists()
    assert store.entries() == {}
    assert store.pem_bundle_path() is None


def test_reads_a_certificate_that_keytool_imported(
    path: Path, certs: list[Cert], tmp_path: Path
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)

    keytool_import(path, "FromKeytool", certs[1], tmp_path)

    entries = store.entries()
    assert set(entries) == {"alpha", "fromkeytool"}
    assert entries["fromkeytool"] == certs[1].cert
    # and a write of ours keeps keytool's entry
    store.install("gamma", certs[2].pem)
    assert set(keytool_list(path)) == {"alpha", "fromkeytool", "gamma"}
    assert store.install("FROMKEYTOOL", certs[1].pem).status == "unchanged"


def test_an_alias_keytool_deleted_leaves_the_inventory_and_the_bundle(
    path: Path, certs: list[Cert]
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)
    store.install("beta", certs[1].pem)

    keytool("-delete", "-alias", "alpha", "-keystore", str(path), "-storepass", PASSWORD)

    assert store.inventory() == [("beta", certs[1].fingerprint)]
    bundle = store.pem_bundle_path()
    assert bundle is not None
    assert x509.load_pem_x509_certificates(bundle.read_bytes()) == [certs[1].cert]


def test_pem_bundle_is_a_ca_file_that_matches_the_entries(path: Path, certs: list[Cert]) -> None:
    store = TrustStore(path, PASSWORD)
    assert store.pem_bundle_path() is None
    store.install("alpha", certs[0].pem)
    store.install("beta", certs[1].pem)

    bundle = store.pem_bundle_path()

    assert bundle is not None
    assert bundle.parent == path.parent
    context = ssl.create_default_context(cafile=str(bundle))
    context.load_verify_locations(cafile=str(bundle))
    loaded = x509.load_pem_x509_certificates(bundle.read_bytes())
    assert sorted(map(fingerprint, loaded)) == sorted(
        fingerprint(c) for c in store.entries().values()
    )
    handshake(certs[1], cafile=bundle)  # a server with that certificate is trusted
    # a new instance rebuilds a bundle that went missing
    bundle.unlink()
    assert TrustStore(path, PASSWORD).pem_bundle_path() == bundle
    assert bundle.exists()


def handshake(server_cert: Cert, cafile: Path) -> None:
    """A TLS handshake over a socket pair: the server presents `server_cert`."""
    cert_file, key_file = cafile.with_name("srv.pem"), cafile.with_name("srv.key")
    cert_file.write_text(server_cert.pem)
    key_file.write_bytes(server_cert.key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cafile=str(cafile))
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(right, server_side=True):
                pass
        except (OSError, ssl.SSLError) as err:
            errors.append(err)

    server = threading.Thread(target=serve)
    server.start()
    try:
        with client_ctx.wrap_socket(left, server_hostname="localhost") as tls:
            assert tls.version()
    finally:
        server.join(10)
    assert not errors


def test_a_crash_before_the_rename_leaves_the_old_store_and_no_temp_file(
    path: Path, certs: list[Cert], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError(5, "simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(TrustStoreError, match=re.escape(str(path))):
        store.install("beta", certs[1].pem)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert leftovers(path.parent) == []
    assert keytool_list(path) == {"alpha": ("trustedCertEntry", certs[0].fingerprint)}


def test_a_write_that_does_not_read_back_is_an_error_and_is_undone(
    path: Path, certs: list[Cert], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TrustStore(path, PASSWORD)
    store.install("alpha", certs[0].pem)
    before = path.read_bytes()
    real = pkcs12.serialize_java_truststore

    def drop_last(entries: list[pkcs12.PKCS12Certificate], encryption: object) -> bytes:
        return real(entries[:-1], encryption)  # type: ignore[arg-type]

    monkeypatch.setattr(pkcs12, "serialize_java_truststore", drop_last)  # as the module calls it
    with pytest.raises(TrustStoreError, match="'beta' is missing"):
        store.install("beta", certs[1].pem)

    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"garbage, not PKCS12", b""], ids=["garbage", "empty"])
def test_an_unreadable_store_is_an_error_and_is_never_replaced(
    path: Path, certs: list[Cert], content: bytes
) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    with pytest.raises(TrustStoreError, match=re.escape(str(path))):
        TrustStore(path, PASSWORD)
    assert path.read_bytes() == content


def test_a_wrong_password_is_an_error_and_the_store_is_kept(path: Path, certs: list[Cert]) -> None:
    TrustStore(path, PASSWORD).install("alpha", certs[0].pem)
    before = path.read_bytes()
    store = TrustStore(path, PASSWORD)

    with pytest.raises(TrustStoreError, match=f"{re.escape(str(path))}: wrong password"):
        TrustStore(path, "not-the-password")
    assert path.read_bytes() == before
    path.write_bytes(b"\x00" * 64)  # corrupted under a live instance
    with pytest.raises(TrustStoreError, match=re.escape(str(path))):
        store.install("beta", certs[1].pem)
    with pytest.raises(TrustStoreError, match=re.escape(str(path))):
        store.remove("alpha")
    assert path.read_bytes() == b"\x00" * 64


def test_a_store_holding_a_private_key_is_not_rewritten(
    path: Path, certs: list[Cert], tmp_path: Path
) -> None:
    """CloudStack's cloud.jks holds the agent's own key pair: a rewrite would lose it."""
    path.parent.mkdir(parents=True)
    keytool(
        "-genkeypair", "-alias", "cloud", "-keyalg", "RSA", "-keysize", "2048",
        "-dname", "CN=agent", "-keystore", str(path), "-storetype", "PKCS12",
        "-storepass", PASSWORD, "-keypass", PASSWORD,
    )  # fmt: skip
    keytool_import(path, "cloudca", certs[0], tmp_path)
    before = path.read_bytes()
    store = TrustStore(path, PASSWORD)

    assert store.inventory() == [("cloudca", certs[0].fingerprint)]
    with pytest.raises(TrustStoreError, match=r"private key entry \(cloud\)"):
        store.install("alpha", certs[1].pem)
    assert path.read_bytes() == before


def test_concurrent_installs_from_eight_threads_all_land(path: Path, certs: list[Cert]) -> None:
    shared = TrustStore(path, PASSWORD)
    run_in_threads([partial(shared.install, f"t{n}", certs[n].pem) for n in range(8)])
    assert keytool_list(path) == {
        f"t{n}": ("trustedCertEntry", certs[n].fingerprint) for n in range(8)
    }


def test_separate_instances_are_serialised_by_the_file_lock(path: Path, certs: list[Cert]) -> None:
    stores = [TrustStore(path, PASSWORD) for _ in range(8)]  # no shared thread lock
    run_in_threads([partial(stores[n].install, f"i{n}", certs[n].pem) for n in range(8)])
    assert {alias for alias, _ in stores[0].inventory()} == {f"i{n}" for n in range(8)}


def test_concurrent_processes_all_land(path: Path, certs: list[Cert], tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from host_agent.truststore import TrustStore\n"
        "store = TrustStore(Path(sys.argv[1]), sys.argv[2])\n"
        "for alias, pem in zip(sys.argv[3::2], sys.argv[4::2]):\n"
        "    store.install(alias, Path(pem).read_text())\n"
    )
    for n in range(8):
        (tmp_path / f"p{n}.pem").write_text(certs[n].pem)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), PASSWORD]
            + [arg for n in (2 * w, 2 * w + 1) for arg in (f"p{n}", str(tmp_path / f"p{n}.pem"))]
        )
        for w in range(4)
    ]
    assert [worker.wait(60) for worker in workers] == [0, 0, 0, 0]
    assert set(keytool_list(path)) == {f"p{n}" for n in range(8)}


def test_a_mixed_case_alias_is_stored_and_reported_in_lower_case(
    path: Path, certs: list[Cert]
) -> None:
    store = TrustStore(path, PASSWORD)

    outcome = store.install("MyCorp-Root.CA", certs[0].pem)

    assert outcome.alias == "mycorp-root.ca"
    assert store.inventory() == [("mycorp-root.ca", certs[0].fingerprint)]
    assert set(keytool_list(path)) == {"mycorp-root.ca"}
    friendly = [c.friendly_name for c in pkcs12.load_pkcs12(path.read_bytes(), b"changeit")
                .additional_certs]  # fmt: skip
    assert friendly == [b"mycorp-root.ca"]
    assert store.remove("MYCORP-ROOT.CA").status == "removed"


@pytest.mark.parametrize("alias", ["", "has space", "ünïcode", "x" * 129, "-lead"])
def test_unusable_aliases_and_pem_are_refused(path: Path, certs: list[Cert], alias: str) -> None:
    store = TrustStore(path, PASSWORD)
    with pytest.raises(TrustStoreError, match="alias"):
        store.install(alias, certs[0].pem)
    with pytest.raises(TrustStoreError, match="expected one PEM certificate, got 2"):
        store.install("two", certs[0].pem + certs[1].pem)
    with pytest.raises(TrustStoreError, match="PEM"):
        store.install("none", "not a certificate")
    assert not path.exists()


def run_in_threads(jobs: list[Callable[[], object]]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors

"""The agent's trusted certificates, kept in a PKCS12 trust store that Java's keytool reads."""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

# keytool lower-cases aliases (Locale.ENGLISH); ASCII only, so Python's lower() agrees with it.
_ALIAS = re.compile(r"[a-z0-9][a-z0-9._@+:-]{0,127}")


class TrustStoreError(Exception):
    """The store cannot be read or written, the input is unusable, or a write did not take."""


class InstallStatus(StrEnum):
    INSTALLED = "installed"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"


class RemoveStatus(StrEnum):
    REMOVED = "removed"
    ABSENT = "absent"


@dataclass(frozen=True)
class InstallOutcome:
    status: InstallStatus
    alias: str
    fingerprint: str
    replaced_fingerprint: str | None = None  # the certificate the alias held before, if replaced


@dataclass(frozen=True)
class RemoveOutcome:
    status: RemoveStatus
    alias: str
    fingerprint: str | None = None  # the certificate that was removed


@dataclass(frozen=True)
class _Contents:
    """What the file holds: trusted entries, its bytes, and anything a rewrite would lose."""

    entries: dict[str, x509.Certificate] = field(default_factory=dict)
    raw: bytes | None = None
    foreign: str | None = None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 as keytool prints it: colon-separated upper-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


class TrustStore:
    """Trusted certificates by alias in the PKCS12 file at `path`, plus a PEM bundle beside it.

    Every change is read-modify-write under a thread lock and an `flock` on `<path>.lock`,
    written atomically, then read back and compared: a write that did not take raises
    `TrustStoreError` (after putting the old file back) instead of reporting success.
    A file that cannot be read is never replaced. `<path>.pem` holds the same certificates
    for the HTTPS downloader's `extra_ca_file`.
    """

    def __init__(self, path: Path, password: str) -> None:
        self.path = Path(path)
        self._password = password.encode()
        self._bundle = self.path.with_name(self.path.name + ".pem")
        self._lock_file = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()
        # Read, not written: a store that cannot be read fails here, at wiring. The bundle,
        # which a crash or keytool may have left stale, is brought up to date on use.
        self._load()

    def entries(self) -> dict[str, x509.Certificate]:
        """Alias (lower case) -> certificate for every trusted entry; empty if no file."""
        return dict(self._load().entries)

    def inventory(self) -> list[tuple[str, str]]:
        """(alias, SHA-256 fingerprint) for every trusted entry, sorted by alias."""
        return [(alias, fingerprint(cert)) for alias, cert in sorted(self.entries().items())]

    def install(self, alias: str, cert_pem: str) -> InstallOutcome:
        """Trust `cert_pem` under `alias`; the same certificate again changes nothing."""
        alias, cert = _alias(alias), _certificate(cert_pem)
        new_print = fingerprint(cert)
        with self._locked():
            current = self._load()
            old = current.entries.get(alias)
            if old is not None and _der(old) == _der(cert):
                self._sync_bundle(current.entries)
                return InstallOutcome(InstallStatus.UNCHANGED, alias, new_print)
            self._commit(current, {**current.entries, alias: cert})
        if old is None:
            return InstallOutcome(InstallStatus.INSTALLED, alias, new_print)
        return InstallOutcome(InstallStatus.REPLACED, alias, new_print, fingerprint(old))

    def remove(self, alias: str) -> RemoveOutcome:
        """Stop trusting `alias`; an alias that is not there is reported `absent`."""
        alias = _alias(alias)
        with self._locked():
            current = self._load()
            old = current.entries.get(alias)
            if old is None:
                self._sync_bundle(current.entries)
                return RemoveOutcome(RemoveStatus.ABSENT, alias)
            self._commit(current, {a: c for a, c in current.entries.items() if a != alias})
        return RemoveOutcome(RemoveStatus.REMOVED, alias, fingerprint(old))

    def pem_bundle_path(self) -> Path | None:
        """The PEM file of every trusted certificate, brought up to date; None if none."""
        current = self._load()
        if _bundle_bytes(current.entries) == _read_or_none(self._bundle):
            return self._bundle if current.entries else None
        with self._locked():
            return self._sync_bundle(self._load().entries)

    def _load(self) -> _Contents:
        raw = _read_or_none(self.path)
        if raw is None:
            return _Contents()
        try:
            loaded = pkcs12.load_pkcs12(raw, self._password or None)
        except ValueError as err:
            message = (
                f"cannot read trust store {self.path}: wrong password, or not a PKCS12 file "
                f"(a JKS store must first be converted with keytool -importkeystore): {err}"
            )
            raise TrustStoreError(message) from err
        entries: dict[str, x509.Certificate] = {}
        unnamed = 0
        for item in loaded.additional_certs:
            if item.friendly_name is None:
                unnamed += 1  # a key's chain certificate, not a trusted entry
                continue
            alias = item.friendly_name.decode("utf-8", "replace").lower()
            if alias in entries:
                message = f"trust store {self.path} holds the alias {alias!r} twice (by case)"
                raise TrustStoreError(message)
            entries[alias] = item.certificate
        foreign = None
        if loaded.key is not None or loaded.cert is not None:
            name = loaded.cert.friendly_name if loaded.cert else None
            foreign = f"a private key entry ({(name or b'?').decode('utf-8', 'replace')})"
        elif unnamed:
            foreign = f"{unnamed} certificate(s) without an alias"
        return _Contents(entries, raw, foreign)

    def _commit(self, current: _Contents, wanted: Mapping[str, x509.Certificate]) -> None:
        """Write `wanted`, read it back, and put the old file back if it did not take."""
        if current.foreign:
            message = (
                f"trust store {self.path} also holds {current.foreign}, which rewriting it as "
                "a trust store would drop; refusing to change it (use a separate file)"
            )
            raise TrustStoreError(message)
        self._replace(self.path, _serialize(wanted, self._password) if wanted else None)
        try:
            problem = _difference(wanted, self._load().entries)
        except TrustStoreError as err:
            problem = f"reading it back failed: {err}"
        if problem:
            try:
                self._replace(self.path, current.raw)
            except TrustStoreError as err:
                problem += f"; restoring the previous file also failed: {err}"
            raise TrustStoreError(f"trust store {self.path} did not take the change: {problem}")
        self._sync_bundle(wanted)

    def _sync_bundle(self, entries: Mapping[str, x509.Certificate]) -> Path | None:
        data = _bundle_bytes(entries)
        if data != _read_or_none(self._bundle):
            self._replace(self._bundle, data)
        return self._bundle if data else None

    def _replace(self, target: Path, data: bytes | None) -> None:
        """Atomically make `target` hold `data` (None: not exist), durable once this returns."""
        try:
            if data is None:
                target.unlink(missing_ok=True)
            else:
                _write_atomically(target, data)
            _fsync_directory(target.parent)
        except OSError as err:
            raise TrustStoreError(f"cannot write {target}: {err}") from err

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: threads of this instance, then every process (flock)."""
        with self._thread_lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as err:
                raise TrustStoreError(f"cannot open the lock {self._lock_file}: {err}") from err
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


def _alias(alias: str) -> str:
    lowered = alias.strip().lower()
    if not _ALIAS.fullmatch(lowered):
        message = f"alias {alias!r} is not 1-128 of a-z 0-9 . _ @ + : - (starting alnum)"
        raise TrustStoreError(message)
    return lowered


def _certificate(cert_pem: str) -> x509.Certificate:
    try:
        certs = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError as err:
        raise TrustStoreError(f"not a PEM certificate: {err}") from err
    if len(certs) != 1:
        raise TrustStoreError(f"expected one PEM certificate, got {len(certs)}")
    return certs[0]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _serialize(entries: Mapping[str, x509.Certificate], password: bytes) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()  # then only an empty password opens it
    )
    certs = [pkcs12.PKCS12Certificate(entries[a], a.encode()) for a in sorted(entries)]
    return pkcs12.serialize_java_truststore(certs, encryption)


def _difference(wanted: Mapping[str, x509.Certificate], got: Mapping[str, x509.Certificate]) -> str:
    """'' when both hold the same certificates under the same aliases, else what differs."""
    problems = [f"{a!r} is missing" for a in sorted(wanted.keys() - got.keys())]
    problems += [f"{a!r} is still there" for a in sorted(got.keys() - wanted.keys())]
    problems += [
        f"{a!r} holds {fingerprint(got[a])}, not {fingerprint(wanted[a])}"
        for a in sorted(wanted.keys() & got.keys())
        if _der(wanted[a]) != _der(got[a])
    ]
    return "; ".join(problems)


def _bundle_bytes(entries: Mapping[str, x509.Certificate]) -> bytes | None:
    """The PEM bundle, each certificate under a comment naming it; None when empty."""
    parts = [
        f"# alias: {a}\n# SHA256: {fingerprint(entries[a])}\n".encode()
        + entries[a].public_bytes(serialization.Encoding.PEM)
        for a in sorted(entries)
    ]
    return b"".join(parts) or None


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise TrustStoreError(f"cannot read {path}: {err}") from err


def _write_atomically(target: Path, data: bytes) -> None:
    """A private temp file beside `target`, fsynced, then renamed over it; no temp is left."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

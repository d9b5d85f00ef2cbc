"""Java's keytool as the judge of a trust store: what it lists is what a JVM would trust."""

from __future__ import annotations

import subprocess
from pathlib import Path

DEFAULT_PASSWORD = "changeit"


def _keytool(store: Path, password: str, *action: str) -> str:
    command = ["keytool", *action, "-keystore", str(store), "-storetype", "PKCS12"]
    done = subprocess.run(
        [*command, "-storepass", password], capture_output=True, text=True, check=True
    )
    return done.stdout


def entries(store: Path, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    """alias -> entry type (trustedCertEntry, PrivateKeyEntry); {} when there is no store."""
    if not store.exists():
        return {}
    found = {}
    for line in _keytool(store, password, "-list").splitlines():
        parts = [p.strip() for p in line.split(",")]  # "repo-ca, Nov 25, 2026, trustedCertEntry,"
        kind = next((p for p in parts if p.endswith("Entry")), None)
        if kind is not None:
            found[parts[0]] = kind
    return found


def trusted_aliases(store: Path, password: str = DEFAULT_PASSWORD) -> list[str]:
    return sorted(
        alias for alias, kind in entries(store, password).items() if kind == "trustedCertEntry"
    )


def delete(store: Path, alias: str, password: str = DEFAULT_PASSWORD) -> None:
    """Remove an alias by hand, as an operator editing the host would."""
    _keytool(store, password, "-delete", "-alias", alias)

"""The alias a certificate is stored under in each KVM host's keystore."""

from __future__ import annotations

import string
from typing import NoReturn

from directdl.contracts.errors import InvalidMessage

MAX_LENGTH = 63  # one DNS label
_ALLOWED = frozenset(string.ascii_letters + string.digits + "-")
_RESERVED = "cloud"  # CloudStack's own key pair in the agent keystore
_RESERVED_PREFIX = "cloudca"  # CloudStack's CA certificates in the same keystore


def check_alias(name: str) -> str:
    """Return the alias in lower case, as keytool lists it, or raise saying what is wrong."""
    if not name:
        _refuse(name, "alias must not be empty")
    if len(name) > MAX_LENGTH:
        _refuse(name, f"alias {name!r} is {len(name)} characters long; at most {MAX_LENGTH}")
    bad = sorted(set(name) - _ALLOWED)
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        _refuse(
            name,
            f"alias {name!r} contains {shown}; only ASCII letters, digits and hyphens are allowed",
        )
    if name.startswith("-"):
        _refuse(name, f"alias {name!r} starts with a hyphen")
    if name.endswith("-"):
        _refuse(name, f"alias {name!r} ends with a hyphen")
    alias = name.lower()
    if alias == _RESERVED:
        _refuse(name, f"alias {name!r} is reserved: CloudStack uses it for its own key pair")
    if alias.startswith(_RESERVED_PREFIX):
        _refuse(
            name,
            f"alias {name!r} starts with {_RESERVED_PREFIX!r}, "
            "which CloudStack reserves for its CA certificates",
        )
    return alias


def _refuse(name: str, message: str) -> NoReturn:
    raise InvalidMessage(message, details={"field": "name", "value": name})

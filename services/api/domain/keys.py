"""API keys: made as CloudStack makes them, and told apart from the ones revoked."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from directdl.contracts.apikey import ApiKeyView

# CloudStack's keys are 64 random bytes in base64url without padding: 86 characters.
KEY_BYTES = 64


def new_key_pair() -> tuple[str, str]:
    """A new (api key, secret key)."""
    return secrets.token_urlsafe(KEY_BYTES), secrets.token_urlsafe(KEY_BYTES)


@dataclass(frozen=True)
class ApiKey:
    name: str
    api_key: str
    secret: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return self.revoked_at is None

    def view(self) -> ApiKeyView:
        return ApiKeyView(
            name=self.name,
            api_key=self.api_key,
            created_at=self.created_at,
            revoked_at=self.revoked_at,
            last_used_at=self.last_used_at,
        )

"""API key messages: the CloudStack gateway's keys, created, listed and revoked by operators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts.base import Command, Result
from directdl.contracts.bounds import MANY, Name

# CloudStack's keys are 86 characters of base64url; ours are as long, and both fit here.
ApiKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class ApiKeyView(BaseModel):
    """A key as operators see it: never its secret, which only its creation reveals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(description="Who or what holds the key, as the operator named it.")
    api_key: ApiKey
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = Field(
        None, description="When a request signed with it was last accepted."
    )


class ApiKeyCreated(Result):
    key: ApiKeyView
    secret_key: ApiKey = Field(
        description="The secret that signs requests; shown this once, stored encrypted."
    )


class ApiKeyResult(Result):
    key: ApiKeyView


class ApiKeyList(Result):
    items: Annotated[list[ApiKeyView], Field(max_length=MANY)]


class CreateApiKey(Command):
    """A new API key and secret for the CloudStack API; the name must not be taken."""

    routing_key: ClassVar[str] = "apikey.create"
    result = ApiKeyCreated

    name: Name


class ListApiKeys(Command):
    routing_key: ClassVar[str] = "apikey.list"
    result = ApiKeyList

    include_revoked: bool = False


class RevokeApiKey(Command):
    """From now on, requests signed with this key are refused (401)."""

    routing_key: ClassVar[str] = "apikey.revoke"
    result = ApiKeyResult

    api_key: ApiKey

"""API gateway settings: env prefix API_, localhost defaults but for the key that guards secrets."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore", frozen=True)

    health_port: int = 8084
    listen_host: str = Field(
        "127.0.0.1", description="Where the CloudStack API listens; 0.0.0.0 in compose."
    )
    listen_port: int = Field(
        8080, description="The CloudStack API's port (its path is /client/api); 0: any free one."
    )
    http_threads: int = Field(
        8, ge=1, le=256, description="Requests served at once, each with its own broker channel."
    )
    secrets_key: SecretStr = Field(
        description="Fernet keys (comma-separated, newest first) that encrypt the API keys' "
        "secrets at rest: `directdl apikey secrets-key` prints a new one."
    )
    reply_timeout: float = Field(
        40.0,
        gt=0,
        description="Seconds a request waits for directdl's reply: beyond a certificate "
        "fan-out's 30 s for hosts to answer (raise cs's CLOUDSTACK_TIMEOUT to match).",
    )
    enforce_expires: bool = Field(
        False,
        description="As CloudStack's enforce.post.requests.and.timestamps: every request must "
        "carry signatureversion=3 and an expires at most 15 minutes ahead.",
    )

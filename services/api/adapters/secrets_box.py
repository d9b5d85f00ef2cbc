"""Secrets encrypted at rest with Fernet, under keys from the environment, newest first."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretsKeyError(ValueError):
    """API_SECRETS_KEY is missing or is not a list of Fernet keys."""


class UnreadableSecret(ValueError):
    """A stored secret was encrypted under none of the configured keys."""


class SecretBox:
    """Encrypts with the first key and decrypts with any, so that keys can be rotated:
    put the new key first, keep the old one after it until every secret is re-encrypted."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise SecretsKeyError("API_SECRETS_KEY is empty: `directdl apikey secrets-key`")
        fernets = []
        for index, part in enumerate(parts, 1):
            try:
                fernets.append(Fernet(part))
            except ValueError as err:
                # Never echo the key: a wrong one may still be someone's real key.
                raise SecretsKeyError(
                    f"API_SECRETS_KEY's key {index} of {len(parts)} is not a Fernet key "
                    "(32 bytes in url-safe base64): `directdl apikey secrets-key` makes one"
                ) from err
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as err:
            raise UnreadableSecret(
                "a stored API secret was encrypted under none of API_SECRETS_KEY's keys"
            ) from err

"""The API keys, their secrets sealed in the database and opened only to check a signature."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.adapters.orm import ApiKeyRow
from api.adapters.secrets_box import SecretBox
from api.domain.keys import ApiKey


class KeyRepository:
    def __init__(self, session: Session, box: SecretBox) -> None:
        self.session = session
        self.box = box

    def add(self, key: ApiKey) -> None:
        self.session.add(
            ApiKeyRow(
                api_key=key.api_key,
                name=key.name,
                secret=self.box.seal(key.secret),
                created_at=key.created_at,
            )
        )

    def get(self, api_key: str) -> ApiKey | None:
        row = self.session.get(ApiKeyRow, api_key)
        return None if row is None else self._key(row)

    def named(self, name: str) -> ApiKey | None:
        row = self.session.scalars(select(ApiKeyRow).where(ApiKeyRow.name == name)).first()
        return None if row is None else self._key(row)

    def listing(self, include_revoked: bool) -> list[ApiKey]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.name)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        return [self._key(row, with_secret=False) for row in self.session.scalars(query)]

    def revoke(self, api_key: str, now: datetime) -> None:
        self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.api_key == api_key, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def used(self, api_key: str, now: datetime) -> None:
        self.session.execute(
            update(ApiKeyRow).where(ApiKeyRow.api_key == api_key).values(last_used_at=now)
        )

    def _key(self, row: ApiKeyRow, with_secret: bool = True) -> ApiKey:
        return ApiKey(
            name=row.name,
            api_key=row.api_key,
            # A listing needs no secret, and opens none: fewer places where one is in memory.
            secret=self.box.open(row.secret) if with_secret else "",
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )

"""API keys: one tenant per key; only a SHA-256 of the key is stored, so a leaked database leaks no key."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipelines.db.models import ApiKey, utcnow

KEY_PREFIX = "agpo_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: int
    tenant: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.tenant, row.name, row.prefix, row.created_at, row.revoked_at)


def create_key(session: Session, tenant: str, name: str = "") -> tuple[str, KeyInfo]:
    """A new key for ``tenant``; the clear key is returned once and never stored."""
    if not tenant or len(tenant) > 64 or not tenant.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"tenant {tenant!r}: use 1-64 letters, digits, '-' or '_'")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant=tenant, name=name, prefix=key[:12], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return key, _info(row)


def authenticate(session: Session, key: str) -> str | None:
    """The tenant of an active ``key``, or None."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    return row.tenant if row else None


def revoke_key(session: Session, key_id: int) -> bool:
    done = session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return done.rowcount == 1


def list_keys(session: Session, tenant: str | None = None) -> list[KeyInfo]:
    query = select(ApiKey).order_by(ApiKey.id)
    if tenant:
        query = query.where(ApiKey.tenant == tenant)
    return [_info(r) for r in session.scalars(query)]

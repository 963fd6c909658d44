"""API keys: one tenant per key; only a SHA-256 of the key is stored, so a leaked database leaks no key.

A key has a role: a ``client`` key runs jobs (and may review them); a ``reviewer`` key may only review its
tenant's jobs. A reviewer is known by the key's name.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipelines.db.models import ApiKey, utcnow

KEY_PREFIX = "agpo_"
ROLES = ("client", "reviewer")


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
    role: str = "client"


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the tenant it acts for, the name reviews are stored under, and its role."""

    tenant: str
    name: str
    role: str = "client"


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.tenant, row.name, row.prefix, row.created_at, row.revoked_at, row.role)


def create_key(session: Session, tenant: str, name: str = "", role: str = "client") -> tuple[str, KeyInfo]:
    """A new key for ``tenant``; the clear key is returned once and never stored."""
    if not tenant or len(tenant) > 64 or not tenant.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"tenant {tenant!r}: use 1-64 letters, digits, '-' or '_'")
    if role not in ROLES:
        raise ValueError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if role == "reviewer" and not name.strip():
        raise ValueError("a reviewer key needs a name (--name): reviews are stored under it")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant=tenant, name=name, prefix=key[:12], key_hash=hash_key(key), role=role)
    session.add(row)
    session.flush()
    return key, _info(row)


def authenticate(session: Session, key: str) -> Caller | None:
    """The caller an active ``key`` stands for, or None."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    return Caller(row.tenant, row.name.strip() or f"key-{row.id}", row.role)


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

"""Fair dispatch between tenants: which chunk a free worker takes, and when a running chunk gives way.

A queue message does not decide what a worker runs; it only says that work is waiting. The worker then takes
the claimable chunk (queued, or running under an expired lease) of the tenant with the fewest chunks running,
ties going to the tenant whose last claim is oldest, its oldest chunk first. So a tenant's 10-pair job does
not wait behind another tenant's 100,000 pairs: it is next as soon as a worker is free.

A worker is free more often than chunks end: between two teacher batches, a chunk gives way (its finished
pairs are written, the rest goes back to the queue) when another tenant is waiting with fewer chunks running,
or with one fewer and nothing claimed for ``slice_seconds``. The second rule turns two large tenants into
round-robin by time slices instead of batch-by-batch ping-pong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pipelines.db.models import Chunk, Job

OPEN_JOBS = ("queued", "in_progress", "cancelling")


@dataclass
class TenantLoad:
    running: int = 0
    last_claim: datetime | None = None
    next_chunk: int | None = None  # its oldest claimable chunk


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    return or_(Chunk.status == "queued", (Chunk.status == "running") & (Chunk.lease_expires_at < now))


def tenant_loads(session: Session, now: datetime) -> dict[str, TenantLoad]:
    """Per tenant with open jobs: chunks running under a live lease, the last claim of any chunk of those jobs
    (finished ones included), and the next chunk to take."""
    loads: dict[str, TenantLoad] = {}
    live = (Chunk.status == "running") & (Chunk.lease_expires_at >= now)
    for tenant, running, last in session.execute(
        select(Job.tenant, func.count().filter(live), func.max(Chunk.claimed_at))
        .join(Job, Job.id == Chunk.job_id)
        .where(Job.status.in_(OPEN_JOBS))
        .group_by(Job.tenant)
    ):
        loads[tenant] = TenantLoad(running=running, last_claim=last)
    for tenant, first in session.execute(
        select(Job.tenant, func.min(Chunk.id))
        .join(Job, Job.id == Chunk.job_id)
        .where(_claimable(now))
        .group_by(Job.tenant)
    ):
        loads.setdefault(tenant, TenantLoad()).next_chunk = first
    return loads


def _since(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return float("inf")
    if moment.tzinfo is None:  # SQLite hands back naive datetimes
        moment = moment.replace(tzinfo=now.tzinfo)
    return (now - moment).total_seconds()


def pick_chunk(session: Session, now: datetime) -> int | None:
    """The chunk a free worker should take now, or None when nothing is claimable."""
    waiting = [
        (load.running, -_since(load.last_claim, now), load.next_chunk)
        for load in tenant_loads(session, now).values()
        if load.next_chunk is not None
    ]
    return min(waiting)[2] if waiting else None


def should_yield(session: Session, tenant: str, now: datetime, slice_seconds: float) -> bool:
    """Whether a chunk of ``tenant``, running now, should give way to another tenant's waiting chunk."""
    loads = tenant_loads(session, now)
    mine = loads.get(tenant, TenantLoad()).running
    for other, load in loads.items():
        if other == tenant or load.next_chunk is None:
            continue
        if load.running < mine - 1:
            return True
        if load.running == mine - 1 and _since(load.last_claim, now) >= slice_seconds:
            return True
    return False

"""Webhooks: a job that ends tells the URL it was given, signed as Standard Webhooks sign (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; https://www.standardwebhooks.com).

The event is written to an outbox (:class:`WebhookDelivery`) in the transaction that ends the job, so a crash never
loses it; :func:`deliver_due` sends what is due (the workers' sweep and the local dispatcher's sweeper call it) and
backs off after a failure: at least once, the receiver drops repeats by ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipelines.db.models import Job, WebhookDelivery, utcnow
from pipelines.db.session import session_scope
from relevance.pairs import unstorable

log = logging.getLogger(__name__)
MAX_URL_CHARS = 2048


def check_url(url: str) -> str:
    """A webhook URL a worker can call and the database can store; a ValueError says what is wrong."""
    if problem := unstorable(url):
        raise ValueError(f"webhook_url {problem}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"webhook_url {url[:80]!r}: use an http:// or https:// URL")
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"webhook_url is {len(url)} characters; the limit is {MAX_URL_CHARS}")
    return url


def enqueue(session: Session, job: Job, view: dict[str, Any]) -> None:
    """The job's end as an outbox row, in the caller's transaction (once per job and event)."""
    if not job.webhook_url:
        return
    event = f"job.{job.status}"
    exists = session.scalar(
        select(WebhookDelivery.id).where(WebhookDelivery.job_id == job.id, WebhookDelivery.event == event)
    )
    if exists is None:
        payload = json.loads(json.dumps({"type": event, "data": view}, default=lambda o: o.isoformat()))
        session.add(WebhookDelivery(job_id=job.id, url=job.webhook_url, event=event, payload=payload, attempts=0))


def _headers(msg_id: str, body: str, secret: str | None, now: datetime) -> dict[str, str]:
    headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp()))}
    if secret:
        from standardwebhooks import Webhook

        headers["webhook-signature"] = Webhook(secret).sign(msg_id, now, body)
    return headers


def deliver_due(
    db_url: str, secret: str | None, *, max_attempts: int = 8, timeout: float = 5.0, now: datetime | None = None
) -> int:
    """Send every due delivery once; returns how many the receivers took. No transaction stays open while a
    receiver answers: the due rows are read, sent, then each outcome is written on its own."""
    import httpx

    now = now or utcnow()
    with session_scope(db_url) as session:
        due = [
            (d.id, d.url, f"msg_{d.job_id}_{d.event}", json.dumps(d.payload, separators=(",", ":")), d.attempts)
            for d in session.scalars(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.delivered_at.is_(None),
                    WebhookDelivery.attempts < max_attempts,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.id)
                .limit(50)
            )
        ]
    taken = 0
    for delivery_id, url, msg_id, body, attempts in due:
        try:
            response = httpx.post(url, content=body, headers=_headers(msg_id, body, secret, now), timeout=timeout)
            ok, error = response.is_success, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
        # 2, 4, 8 ... seconds between tries, at most 10 minutes
        values: dict[str, Any] = (
            {"delivered_at": utcnow(), "last_error": None}
            if ok
            else {"next_attempt_at": utcnow() + timedelta(seconds=min(2 ** (attempts + 1), 600)), "last_error": error}
        )
        with session_scope(db_url) as session:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(attempts=WebhookDelivery.attempts + 1, **values)
            )
        taken += ok
        if not ok:
            log.warning("webhook %s to %s: %s", msg_id, url, error)
    return taken

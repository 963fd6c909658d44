"""Webhooks: a job that ends tells the URL it was given, signed as Standard Webhooks sign (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; https://www.standardwebhooks.com) with the tenant's own secret
(:func:`tenant_secret`), else the service's.

A webhook is an outbound request a tenant aims from inside the service's network, so targets are checked when a
job names one and again before every try (:func:`target_problem`): a host on ``AGPO_WEBHOOK_ALLOWED_HOSTS`` when it
is set, else a host whose every address is public (no loopback, private, link-local or metadata address).

The event is written to an outbox (:class:`WebhookDelivery`) in the transaction that ends the job, so a crash never
loses it; :func:`deliver_due` sends what is due (the workers' sweep and the local dispatcher's sweeper call it) and
backs off after a failure: at least once, the receiver drops repeats by ``webhook-id``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipelines.db.models import Job, WebhookDelivery, WebhookSecret, utcnow
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


Resolver = Callable[[str], list[str]]


def _addresses(host: str) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


def allowed_hosts(setting: str) -> list[str]:
    """``AGPO_WEBHOOK_ALLOWED_HOSTS`` as a list of lower-case hosts and ``*.domain`` patterns."""
    return [h.strip().lower() for h in setting.split(",") if h.strip()]


def _allowed(host: str, patterns: Sequence[str]) -> bool:
    return any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in patterns)


def checked_target(url: str, allowed: Sequence[str], resolve: Resolver = _addresses) -> tuple[str | None, str | None]:
    """``(problem, address)``: why the service will not call ``url`` (or None), and the address it checked.

    With an allowlist, only its hosts (connected to by name: the admin vouches for them). Without one, a host whose
    every address is public: an address the tenant cannot reach from outside (loopback, private, link-local, such
    as a cloud metadata endpoint) is refused, whatever name points at it. Checked again before each try, since a
    name can change what it points at, and the try then connects to the address checked (:func:`pinned`), not to
    whatever the name resolves to a moment later (DNS rebinding).
    """
    host = (urlsplit(url).hostname or "").lower()
    if allowed:
        return (None if _allowed(host, allowed) else f"host {host!r} is not in AGPO_WEBHOOK_ALLOWED_HOSTS"), None
    try:
        addresses = resolve(host)
    except (OSError, UnicodeError):
        return f"host {host!r} does not resolve", None
    private = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
    if private or not addresses:
        shown = private[0] if private else "nothing"
        return (
            f"host {host!r} resolves to {shown}, not a public address; a service admin can allow it with "
            "AGPO_WEBHOOK_ALLOWED_HOSTS"
        ), None
    return None, addresses[0]


def target_problem(url: str, allowed: Sequence[str], resolve: Resolver = _addresses) -> str | None:
    """Why the service will not call ``url``, or None (:func:`checked_target`)."""
    return checked_target(url, allowed, resolve)[0]


def pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(url, headers, extensions)`` that reach ``address`` for ``url``: the address in the URL, the name in the
    Host header and, over TLS, as the server name the certificate is checked against. No address: ``url`` as it is.
    """
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address.split("%")[0])
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    headers = {"host": parts.netloc.rpartition("@")[2]}
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), headers, extensions


def tenant_secret(session: Session, tenant: str, *, rotate: bool = False) -> str:
    """The tenant's webhook secret (``whsec_`` + base64 of 32 random bytes), made on first use or when rotated."""
    row = session.get(WebhookSecret, tenant)
    if row is None or rotate:
        value = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        if row is None:
            session.add(WebhookSecret(tenant=tenant, secret=value))
        else:
            row.secret, row.created_at = value, utcnow()
        session.flush()
        return value
    return row.secret


def enqueue(session: Session, job: Job, event: str, view: dict[str, Any]) -> None:
    """The job's end (``event``: ``job.completed``, ``batch.expired`` ...) as an outbox row, in the caller's
    transaction (once per job and event)."""
    if not job.webhook_url:
        return
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
    db_url: str,
    secret: str | None,
    *,
    allowed: Sequence[str] = (),
    max_attempts: int = 8,
    timeout: float = 5.0,
    now: datetime | None = None,
    resolve: Resolver = _addresses,
    transport: Any = None,
) -> int:
    """Send every due delivery once; returns how many the receivers took. No transaction stays open while a
    receiver answers: the due rows are read, sent, then each outcome is written on its own. ``secret`` signs for
    tenants without their own; a target that fails :func:`checked_target` is given up without a request.
    ``transport`` is httpx's (a test's recorder); None: the network."""
    import httpx

    now = now or utcnow()
    with session_scope(db_url) as session:
        rows = session.execute(
            select(WebhookDelivery, Job.tenant, WebhookSecret.secret)
            .join(Job, Job.id == WebhookDelivery.job_id)
            .outerjoin(WebhookSecret, WebhookSecret.tenant == Job.tenant)
            .where(
                WebhookDelivery.delivered_at.is_(None),
                WebhookDelivery.attempts < max_attempts,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.id)
            .limit(50)
        ).all()
        due = [
            (d.id, d.url, f"msg_{d.job_id}_{d.event}", json.dumps(d.payload, separators=(",", ":")), d.attempts, own)
            for d, _tenant, own in rows
        ]
    taken = 0
    for delivery_id, url, msg_id, body, attempts, own in due:
        values: dict[str, Any]
        refused, address = checked_target(url, allowed, resolve)
        if refused:
            values = {"attempts": max_attempts, "last_error": f"refused: {refused}"}
            ok, error = False, values["last_error"]
        else:
            target, host, extensions = pinned(url, address)
            try:
                headers = {**_headers(msg_id, body, own or secret, now), **host}
                with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
                    response = client.post(target, content=body, headers=headers, extensions=extensions)
                ok, error = response.is_success, f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
            # 2, 4, 8 ... seconds between tries, at most 10 minutes
            values = (
                {"delivered_at": utcnow(), "last_error": None, "attempts": WebhookDelivery.attempts + 1}
                if ok
                else {
                    "next_attempt_at": utcnow() + timedelta(seconds=min(2 ** (attempts + 1), 600)),
                    "last_error": error,
                    "attempts": WebhookDelivery.attempts + 1,
                }
            )
        with session_scope(db_url) as session:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))
        taken += ok
        if not ok:
            log.warning("webhook %s to %s: %s", msg_id, url, error)
    return taken

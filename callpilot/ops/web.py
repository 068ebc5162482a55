"""Operations inside the web app: `/metrics`, `/api/v1/kpis`, `/dashboard`, the webhook dispatcher, the alerts.

`OpsDelivery` is what the other parts report to (metrics, webhooks, tickets); `OpsRuntime` gets the records
database and the live floor (the handoff runtime, whose service has `async snapshot()`) in its constructor.
Both sources are optional: without them the routes say so instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection

from callpilot.ops import dashboard
from callpilot.ops.alerts import AlertBook, AlertMonitor, Sample, StateStore, webhook_notifier
from callpilot.ops.facts import CHANNEL_CHOICES, PHONE_CHANNELS, CallFact, load_facts
from callpilot.ops.kpi import Bucket, compute_kpis, hot_topics, in_window, longest_wait_s, sample_sizes, settled
from callpilot.ops.metrics import CONTENT_TYPE_LATEST, CallMetrics, FloorView, WriterLike
from callpilot.ops.observer import OpsObserver
from callpilot.ops.tickets import TicketDelivery
from callpilot.ops.webhooks import Backoff, Subscription, WebhookDispatcher
from callpilot.records.apikeys import Principal, verify_key
from callpilot.records.auth import require_role
from callpilot.records.db import Database
from callpilot.records.web_sessions import (
    SESSION_LIFETIME,
    close_session,
    secure_cookies,
    session_principal,
    sign_in,
)
from callpilot.settings import Settings

log = logging.getLogger("callpilot.ops")

COOKIE = "callpilot_dashboard"  # holds a web session id (callpilot.records.web_sessions), never the API key
SCOPE = "dashboard"
DASHBOARD_ROLES = ("supervisor", "admin")
MAX_SPAN = timedelta(days=366)
SHUTDOWN_DRAIN_S = 3.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OpsDelivery:
    """What the other parts report to: the metrics, the webhook dispatcher, the observer of calls and
    conversations, and the CRM tickets. Started first and stopped last, so the last calls' events go out."""

    def __init__(self, settings: Settings) -> None:
        self.metrics = CallMetrics()
        self.hooks = WebhookDispatcher(
            [Subscription.from_settings(target) for target in settings.webhooks],
            backoff=Backoff(max_attempts=settings.webhook_max_attempts),
        )
        self.observer = OpsObserver(self.metrics, self.hooks)
        self.tickets = TicketDelivery(settings, self.hooks)  # the records writer's `on_ticket`

    async def start(self) -> None:
        await self.hooks.start()
        await self.tickets.start()

    async def stop(self) -> None:
        try:  # give queued webhooks (call.ended of the last calls, their tickets) a moment to go out
            await asyncio.wait_for(asyncio.gather(self.hooks.drain(), self.tickets.drain()), SHUTDOWN_DRAIN_S)
        except TimeoutError:
            log.warning("shutting down with webhooks still queued or retrying")
        await self.hooks.stop()
        await self.tickets.stop()


class FloorSource(Protocol):
    """The live floor: the handoff runtime (its `service`, None while Redis is unreachable)."""

    @property
    def service(self) -> Any: ...


class OpsRuntime:
    """The KPIs' and alerts' view of the records (`database`) and the live floor (`floor`); `/metrics` also
    reads the records writer's backlog (`records_writer`) and the voice's ASR worker restarts (`voice_status`).
    Alerts are evaluated only while `is_leader()`, their states kept in `alert_states` (several processes)."""

    def __init__(self, settings: Settings, delivery: OpsDelivery, *, database: Database | None = None,
                 floor: FloorSource | None = None, records_writer: WriterLike | None = None,
                 voice_status: Callable[[], Mapping[str, object]] | None = None,
                 is_leader: Callable[[], bool] = lambda: True, alert_states: StateStore | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.settings = settings
        self.delivery = delivery
        self.metrics, self.hooks, self.observer = delivery.metrics, delivery.hooks, delivery.observer
        self.tickets = delivery.tickets
        self._database, self._floor = database, floor
        self.records_writer, self.voice_status = records_writer, voice_status
        self.clock = clock
        self.alerts = AlertMonitor(AlertBook(settings.alert_rules), self.measure, webhook_notifier(self.hooks),
                                   clock=lambda: self.clock(), interval_s=settings.alert_interval_s,
                                   is_leader=is_leader, states=alert_states)

    async def start(self) -> None:
        self.alerts.start()

    async def stop(self) -> None:
        await self.alerts.stop()

    # Sources.

    def database(self) -> Database | None:
        return self._database

    async def facts(self, start: datetime, end: datetime, *,
                    channels: tuple[str, ...] | None = PHONE_CHANNELS) -> list[CallFact]:
        database = self.database()
        if database is None:
            raise HTTPException(503, "the records database is not configured")

        def load() -> list[CallFact]:
            with database.session() as session:
                return load_facts(session, start, end, channels=channels)

        return await asyncio.to_thread(load)

    async def floor(self) -> FloorView | None:
        """The handoff service's snapshot, or None when there is no queue service (or it fails)."""
        service = self._floor.service if self._floor is not None else None
        if service is None or not hasattr(service, "snapshot"):
            return None
        try:
            view: FloorView = await service.snapshot()
        except Exception:
            log.exception("handoff snapshot failed")
            return None
        return view

    async def measure(self, start: datetime, end: datetime) -> Mapping[str, Sample]:
        """The alert rules' metrics over [start, end) with the calls behind each; the longest wait also looks at
        the live queues."""
        facts = await self.facts(start, end) if self.database() is not None else []  # no records: no data
        k = compute_kpis(facts, start, end, service_level_s=self.settings.service_level_s)
        calls = sample_sizes(k, settled(in_window(facts, start, end)))
        wait = longest_wait_s(facts, end)
        waiting = sum(f.offered and not f.answered and f.ended_at is None for f in facts)
        view = await self.floor()
        if view is not None:
            wait = max([wait, *(q.longest_wait_s for q in view.queues)])
            waiting = max(waiting, sum(len(q.waiting) for q in view.queues))
        values = {"answer_rate": k.answer_rate, "abandonment_rate": k.abandonment_rate,
                  "service_level": k.service_level, "containment_rate": k.containment_rate,
                  "average_speed_of_answer_s": k.average_speed_of_answer_s}
        return {**{metric: Sample(value, calls[metric]) for metric, value in values.items()},
                "longest_wait_s": Sample(wait, waiting)}


def parse_when(name: str, raw: str | None, default: datetime) -> datetime:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    if raw is None or raw == "":
        return default
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}={raw!r}: expected an ISO 8601 date or date-time, "
                                 "e.g. 2026-11-26 or 2026-11-26T09:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ops_of(connection: HTTPConnection) -> OpsRuntime:
    """The app's `OpsRuntime` (put there by `mount_ops`)."""
    ops: OpsRuntime = connection.app.state.ops
    return ops


Ops = Annotated[OpsRuntime, Depends(ops_of)]
router = APIRouter()


def mount_ops(app: FastAPI, ops: OpsRuntime) -> OpsRuntime:
    """Add the operations routes over `ops` (which the app's lifespan starts and stops)."""
    app.state.ops = ops
    app.include_router(router)
    return ops


@router.get("/metrics", include_in_schema=False)
async def metrics(ops: Ops) -> Response:
    """Prometheus text format; no personal data, so it is open like /health (firewall it if needed)."""
    view = await ops.floor()
    if view is not None:
        ops.metrics.update_floor(view)
    ops.metrics.webhooks_dropped.set(ops.hooks.dropped)
    if ops.records_writer is not None:
        ops.metrics.update_records(ops.records_writer)
    if ops.voice_status is not None:
        ops.metrics.asr_worker_restarts.set(float(str(ops.voice_status().get("asr_worker_restarts") or 0)))
    return Response(ops.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/kpis")
async def kpis(request: Request, ops: Ops, _: Principal = Depends(require_role(*DASHBOARD_ROLES))) -> dict[str, Any]:
    settings = ops.settings
    now = ops.clock()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = parse_when("from", request.query_params.get("from"), midnight)
    end = parse_when("to", request.query_params.get("to"), now)
    if end <= start:
        raise HTTPException(400, f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > MAX_SPAN:
        raise HTTPException(400, "the window may span at most 366 days")
    channel = request.query_params.get("channel") or "phone"
    if channel not in CHANNEL_CHOICES:
        raise HTTPException(400, f"channel={channel!r}: expected one of {', '.join(CHANNEL_CHOICES)}")
    facts = await ops.facts(start, end, channels=CHANNEL_CHOICES[channel])
    languages = Counter(f.language or "unknown" for f in facts if start <= f.started_at < end)
    language = request.query_params.get("language")
    if language:  # the KPIs and hot topics of one language's callers (a 400 line: zh, en)
        if language not in settings.languages and language != "unknown":
            raise HTTPException(400, f"language={language!r}: expected one of {', '.join(settings.languages)}")
        facts = [f for f in facts if (f.language or "unknown") == language]
    window = [f for f in facts if start <= f.started_at < end]
    bucket: Bucket = "hour" if end - start <= timedelta(days=2) else "day"
    return {
        "channel": channel,
        "language": language,
        "calls_by_language": dict(languages),
        "kpis": compute_kpis(facts, start, end, service_level_s=settings.service_level_s).to_dict(),
        "longest_wait_s": longest_wait_s(facts, now),
        "hot_topics": {"bucket": bucket, "buckets": [
            {"start": b.start.isoformat(), "top": [list(t) for t in b.top]}
            for b in hot_topics(window, bucket=bucket, top=5)]},
        "alerts": {name: state.value for name, state in ops.alerts.book.states.items()},
    }


def dashboard_principal(request: Request, ops: OpsRuntime) -> Principal | None:
    """A bearer API key (scripts), else the browser's session cookie (never a key); supervisor or admin."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    session_id = None if key else request.cookies.get(COOKIE)
    database = ops.database()
    if not (key or session_id) or database is None:
        return None
    with database.session() as session:
        principal = verify_key(session, key) if key else session_principal(session, session_id or "", SCOPE)
    return principal if principal is not None and principal.role in DASHBOARD_ROLES else None


def secure(request: Request, ops: OpsRuntime) -> bool:
    return request.url.scheme == "https" or secure_cookies(ops.settings.public_url)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page(request: Request, ops: Ops) -> HTMLResponse:
    if ops.database() is None:
        raise HTTPException(503, "the records database is not configured")
    if await asyncio.to_thread(dashboard_principal, request, ops) is None:
        return HTMLResponse(dashboard.render_login())  # a form to fill in, not an error
    now = ops.clock()
    first = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=dashboard.DAYS - 1)
    facts = await ops.facts(first, now + timedelta(seconds=1))
    values = dashboard.context(
        facts, now, floor=await ops.floor(), service_level_s=ops.settings.service_level_s,
        alerts={name: state.value for name, state in ops.alerts.book.states.items()},
    )
    return HTMLResponse(dashboard.render(values))


@router.post("/dashboard/login", include_in_schema=False)
async def dashboard_login(request: Request, ops: Ops) -> Response:
    """Form post of an API key; on success it is kept in an HttpOnly, SameSite=Strict cookie."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    key = form.get("key", "").strip()
    database = ops.database()
    signed_in: tuple[Principal | None, str | None] = (None, None)
    if key and database is not None:
        signed_in = await asyncio.to_thread(sign_in, database, key, DASHBOARD_ROLES, SCOPE)
    principal, session_id = signed_in
    if principal is None or session_id is None:
        why = "unknown or revoked API key" if principal is None else f"role {principal.role!r} may not see it"
        return HTMLResponse(dashboard.render_login(why), status_code=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/dashboard",
                        secure=secure(request, ops), max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/dashboard/logout", include_in_schema=False)
async def dashboard_logout(request: Request, ops: Ops) -> Response:
    """Ends the session on the server too, so a copied cookie is worthless afterwards."""
    session_id, database = request.cookies.get(COOKIE), ops.database()
    if session_id and database is not None:
        def close() -> None:
            with database.session() as session:
                close_session(session, session_id)

        await asyncio.to_thread(close)
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard", secure=secure(request, ops), httponly=True, samesite="strict")
    return response

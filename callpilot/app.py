"""The web app: health, Rasa-compatible parse and REST channel, and the action-server webhook.

Who may call what, and which setting opens or closes it: docs/security.md.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from bot.nlu import NLUEngine, load_or_train
from bot.nlu import load as load_model
from bot.training_data.model import DataError
from callpilot.bodylimit import MaxBodySize
from callpilot.brains import Brain, BuiltinBrain, build_brain
from callpilot.desk_history import RecordsDeskHistory
from callpilot.handoff_port import HandoffRuntime, wrap_up_to_file
from callpilot.leader import AlertStates, Leader
from callpilot.lifecycle import Runtimes
from callpilot.logsafety import install_secret_masking
from callpilot.ops.history_web import mount_history
from callpilot.ops.web import OpsDelivery, OpsRuntime, mount_ops
from callpilot.records.db import Database
from callpilot.records.runtime import RecordsRuntime, mount_records
from callpilot.settings import Settings
from callpilot.site import mount_site
from callpilot.supervisor_keys import ApiKeySessions, secure_cookies
from callpilot.trainer.page import mount_trainer
from callpilot.trainer.runtime import TrainerRuntime
from callpilot.trainer.worker import activated_on_workbench
from callpilot.voice import VoiceRuntime
from callpilot.voice_routes import mount_voice
from callpilot.voicemails import RecordsVoicemails
from callpilot.wallboard import RecordsQueueDay
from handoff.desk import mount_desk
from handoff.desk_parts import DeskParts
from handoff.redis_conn import RedisLink

log = logging.getLogger("callpilot")


class ModelHolder:
    """The active NLU model; replaced atomically (one reference swap) on reload."""

    def __init__(self, engine: NLUEngine | None = None) -> None:
        self.engine = engine
        self.error: str | None = None
        self.ready = threading.Event()
        if engine is not None:
            self.ready.set()

    def parse(self, text: str) -> dict[str, Any]:
        engine = self.engine
        if engine is None:
            raise RuntimeError("the NLU model is not loaded yet")
        return engine.parse(text)

    def swap(self, engine: NLUEngine) -> None:
        self.engine = engine
        self.error = None
        self.ready.set()

    def load(self, settings: Settings) -> None:
        """Train if needed and load; keep the current model if the data is broken."""
        try:
            self.swap(load_model(settings.models_dir) if activated_on_workbench(settings.models_dir)
                      else load_or_train(settings.data_dir, settings.models_dir))
            log.info("NLU model %s loaded", self.engine.model_id if self.engine else "?")
        except DataError as exc:
            self.error = f"training data has errors:\n{exc}"
            log.error("%s", self.error)
        except Exception as exc:  # a broken model must not take the server down
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the NLU model")


def bearer_or_query_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, else `?token=` (how Rasa's EndpointConfig sends it)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


def token_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def create_app(settings: Settings, *, engine: NLUEngine | None = None, database: Database | None = None) -> FastAPI:
    """Assemble the app; the model loads in the background unless one is given. `database`: the records'
    (else the one `settings` names).

    Each runtime gets its collaborators in its constructor, so they are built in dependency order; the lifespan
    starts them in that order and stops them in reverse (`Runtimes`)."""
    holder = ModelHolder(engine)
    brain_box: dict[str, Brain] = {}
    brain_lock = threading.Lock()

    def brain() -> Brain:
        """Built on first use (it loads the domain and back office), once."""
        with brain_lock:
            if "brain" not in brain_box:
                brain_box["brain"] = built = build_brain(settings, holder)
                if isinstance(built, BuiltinBrain):
                    trainer.attach(built.engine)  # its turns feed the inbox; it follows model activations
            return brain_box["brain"]

    action_server_on = settings.brain == "rasa" or settings.action_server
    if action_server_on and not settings.action_token:
        log.error("POST /webhook (the action server for Rasa) refuses every request: set action_token "
                  "(CALLPILOT_ACTION_TOKEN) here and export it into Rasa's endpoints.yml (scripts/rasa.sh does)")

    # Metrics, webhooks and CRM tickets: what the others report to (first up, last down).
    delivery = OpsDelivery(settings)
    # Several processes on one Redis: the once-only work (recording purge, closing calls a crash left open, alert
    # evaluation) is done by the leader; alert states pass from leader to leader through Redis.
    redis = RedisLink(settings.redis_url)
    leader = Leader(redis.client)
    # Call records: the calls table written from the call log; REST conversations; tickets to the CRM.
    records = RecordsRuntime(settings, database, observer=delivery.observer, on_ticket=delivery.tickets,
                             is_leader=leader)
    # Queues, agents, audio bridge; the screen pop looks callers up in the records' contacts (or the CRM), and
    # wrap-ups reach the records directly (also while the voice models are still loading).
    handoff = HandoffRuntime(settings, contacts=records.contacts,
                             wrap_up_sinks=(records.writer.record_wrap_up, wrap_up_to_file(settings.call_log)))
    # The trainer's workbench: the inbox hears every dialogue engine's turns.
    trainer = TrainerRuntime(settings, records.database, holder, call_id_of=records.text.call_id_of)
    # The voice gateway: call-log events and callback attempts -> the records; agents' phones ring through the
    # handoff service; calls hand over through its port once it is up.
    voice = VoiceRuntime(settings, holder, observer=delivery.observer, handoff=handoff,
                         call_log_listeners=(records.writer,), callback_listeners=(records.writer.record_callback,),
                         engine_listeners=(trainer.attach,))
    # KPIs, /metrics (also the records writer's backlog, ASR worker restarts), alerts.
    ops = OpsRuntime(settings, delivery, database=records.database, floor=handoff, records_writer=records.writer,
                     voice_status=voice.status, is_leader=leader, alert_states=AlertStates(redis.client))
    runtimes = Runtimes([delivery, redis, leader, records, ops, handoff, voice, trainer])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        install_secret_masking()  # after uvicorn configured its loggers: the access log too
        if holder.engine is None:
            threading.Thread(target=holder.load, args=(settings,), daemon=True, name="nlu-load").start()
        await runtimes.start()
        yield
        await runtimes.stop()

    # /docs comes from mount_site: FastAPI's own loads Swagger UI from a CDN (and no /redoc: ReDoc's logo does).
    app = FastAPI(title="callpilot", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    mount_site(app)  # /, the stylesheet, the favicon, /docs
    app.add_middleware(MaxBodySize, max_bytes=settings.max_body_bytes)
    app.state.holder = holder
    app.state.settings = settings
    app.state.leader = leader
    app.state.handoff = handoff
    app.state.trainer = trainer
    mount_voice(app, voice)
    mount_records(app, records)
    # /agent, /agent/ws, /agent/api; /supervisor behind a supervisor or admin API key
    mount_desk(app, DeskParts(handoff.deps, supervisor_auth=ApiKeySessions(
        app, secure_cookie=secure_cookies(settings.public_url)), divert=voice.divert, history=RecordsDeskHistory(app),
        queue_day=RecordsQueueDay(app, service_level_s=settings.service_level_s),
        voicemails=RecordsVoicemails(app, settings.recordings_dir)))
    mount_ops(app, ops)  # /metrics, /api/v1/kpis, /dashboard
    mount_history(app)  # /calls: the call history pages
    mount_trainer(app)  # /trainer and /api/v1/trainer

    @app.get("/health/live")
    def live() -> dict[str, str]:
        """Liveness (Kubernetes' livenessProbe): 200 while the process serves requests, also while models load or
        after one failed to load (readiness, `/health`, keeps traffic away then; a restart would not help)."""
        return {"status": "alive"}

    @app.get("/health")
    def health() -> JSONResponse:
        """Readiness (load balancers, Kubernetes): 200 once the NLU and the voice models are loaded; 503 with
        what is not ready ("loading", or "error" once a part failed to load) until then. States only, never a
        connection string (those go to the log, masked)."""
        nlu = "ready" if holder.engine is not None else "failed" if holder.error else "loading"
        voice_status = voice.status()
        parts = {"nlu": nlu, "voice": str(voice_status["status"])}
        errors = {"nlu": holder.error, "voice": voice_status["error"]}
        not_ready = [part for part, state in parts.items() if state != "ready"]
        failed = [part for part, state in parts.items() if state == "failed"]
        status = "error" if failed else "loading" if not_ready else "ok"
        detail = "\n".join(f"{part}: {errors[part]}" for part in failed) or None
        return JSONResponse({"status": status, "not_ready": not_ready, **parts, "detail": detail,
                             "model_id": holder.engine.model_id if holder.engine is not None else None,
                             "brain": settings.brain, "handoff": handoff.status, "leader": leader.is_leader},
                            status_code=200 if status == "ok" else 503)

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        if holder.engine is None:
            raise HTTPException(503, holder.error or "the NLU model is still loading")
        return holder.engine.info()

    @app.post("/model/parse")
    def parse(body: Any = Body(...)) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise HTTPException(400, 'expected a JSON object like {"text": "where is my order"}')
        language = body.get("language")
        if language is not None and language not in settings.languages:
            raise HTTPException(400, f"language must be one of the line's languages: {', '.join(settings.languages)}")
        if holder.engine is None:
            raise HTTPException(503, holder.error or "the NLU model is still loading")
        result = holder.engine.parse(body["text"][: settings.max_text_chars], language=language)
        if "message_id" in body:
            result["message_id"] = body["message_id"]
        return result

    def rest_channel_key(request: Request) -> None:
        if settings.rest_channel_token and not token_matches(bearer_or_query_token(request),
                                                             settings.rest_channel_token):
            raise HTTPException(401, "the REST channel needs 'Authorization: Bearer <rest_channel_token>'",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.post("/webhooks/rest/webhook", dependencies=[Depends(rest_channel_key)])
    def rest_webhook(body: Any = Body(...)) -> list[dict[str, Any]]:
        """Rasa's REST channel. `sender` is the conversation's only key: clients must make it unguessable."""
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            raise HTTPException(400, 'expected a JSON object like {"sender": "id", "message": "hi"}')
        if holder.engine is None and settings.brain == "builtin":
            raise HTTPException(503, holder.error or "the NLU model is still loading")
        message = body["message"][: settings.max_text_chars]  # cut before anything cleans or stores it
        sender = str(body.get("sender") or "default")
        records.text.begin(sender)  # the inbox links its items to this call
        replies: list[dict[str, Any]] = []
        try:
            replies = brain().rest({**body, "message": message})
        finally:  # also when the brain failed: the message is recorded and the conversation can end idle
            records.text.exchange(sender, message, replies)
        return replies

    def action_token(request: Request) -> None:
        if not action_server_on:
            raise HTTPException(404, "the action server is off: it serves a Rasa brain (brain: rasa) or is "
                                     "switched on with action_server: true")
        if not settings.action_token:
            raise HTTPException(503, "the action server needs action_token (CALLPILOT_ACTION_TOKEN)")
        if not token_matches(bearer_or_query_token(request), settings.action_token):
            raise HTTPException(401, "missing or wrong action token (endpoints.yml: action_endpoint.token)",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.post("/webhook", dependencies=[Depends(action_token)])
    def action_server(body: Any = Body(...)) -> JSONResponse:
        """Rasa's action-server protocol, so a Rasa server can run callpilot's actions: on with `brain: rasa`
        or `action_server: true`, and only for requests with `action_token` (`?token=` or a bearer header)."""
        status, reply = brain().action_server(body)
        return JSONResponse(reply, status_code=status)

    return app

"""The web app: health, Rasa-compatible parse and REST channel, and the action-server webhook."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from bot.nlu import NLUEngine, load_or_train
from bot.training_data.model import DataError
from callpilot.brains import Brain, build_brain
from callpilot.handoff_port import HandoffRuntime, wrap_up_to_file
from callpilot.ops.web import mount_ops
from callpilot.records.runtime import mount_records
from callpilot.settings import Settings
from callpilot.site import mount_site
from callpilot.supervisor_keys import api_key_roles
from callpilot.voice import mount_voice
from handoff.desk import desk_router

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
            self.swap(load_or_train(settings.data_dir, settings.models_dir))
            log.info("NLU model %s loaded", self.engine.model_id if self.engine else "?")
        except DataError as exc:
            self.error = f"training data has errors:\n{exc}"
            log.error("%s", self.error)
        except Exception as exc:  # a broken model must not take the server down
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the NLU model")


def create_app(settings: Settings, *, engine: NLUEngine | None = None) -> FastAPI:
    """Assemble the app; the model loads in the background unless one is given."""
    holder = ModelHolder(engine)
    brain_box: dict[str, Brain] = {}
    brain_lock = threading.Lock()

    def brain() -> Brain:
        """Built on first use (it loads the domain and back office), once."""
        with brain_lock:
            if "brain" not in brain_box:
                brain_box["brain"] = build_brain(settings, holder)
            return brain_box["brain"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if holder.engine is None:
            threading.Thread(target=holder.load, args=(settings,), daemon=True, name="nlu-load").start()
        await records.start()  # the schema first: ops reads the calls table
        await ops.start()
        await handoff.start(on_ready=voice.attach_handoff)
        await voice.start()
        yield
        await voice.stop()
        await handoff.stop()
        await records.stop()
        await ops.stop()

    # /docs comes from mount_site: FastAPI's own loads Swagger UI from a CDN (and no /redoc: ReDoc's logo does).
    app = FastAPI(title="callpilot", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    mount_site(app)  # /, the stylesheet, the favicon, /docs
    app.state.holder = holder
    app.state.settings = settings
    voice = mount_voice(app, settings, holder)
    records = mount_records(app, settings)
    voice.call_log_listeners.append(records.writer)  # call-log events -> the calls table
    # Queues, agents, audio bridge; the screen pop looks callers up in the records' contacts (or the CRM), and
    # wrap-ups reach the records directly (also while the voice models are still loading).
    handoff = HandoffRuntime(settings, contacts=records.contacts,
                             wrap_up_sinks=(records.writer.record_wrap_up, wrap_up_to_file(settings.call_log)))
    app.state.handoff = handoff
    # /agent, /agent/ws, /agent/api; /supervisor behind a supervisor or admin API key
    app.include_router(desk_router(handoff.deps, supervisor_keys=api_key_roles(app)))
    ops = mount_ops(app, settings)  # /metrics, /api/v1/kpis, /dashboard, webhooks, alerts
    voice.observer = ops.observer
    records.writer.on_ticket = ops.tickets  # tickets to the CRM (settings.ticket_delivery)
    records.text.observer = ops.observer  # text conversations: metrics and call.started / call.ended too

    @app.get("/health")
    def health() -> JSONResponse:
        if holder.engine is None:
            status = "error" if holder.error else "loading"
            return JSONResponse({"status": status, "detail": holder.error}, status_code=503)
        return JSONResponse({"status": "ok", "model_id": holder.engine.model_id, "brain": settings.brain,
                             "handoff": handoff.status, "handoff_error": handoff.error})

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        if holder.engine is None:
            raise HTTPException(503, holder.error or "the NLU model is still loading")
        return holder.engine.info()

    @app.post("/model/parse")
    def parse(body: Any = Body(...)) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise HTTPException(400, 'expected a JSON object like {"text": "where is my order"}')
        if holder.engine is None:
            raise HTTPException(503, holder.error or "the NLU model is still loading")
        result = holder.engine.parse(body["text"])
        if "message_id" in body:
            result["message_id"] = body["message_id"]
        return result

    @app.post("/model/reload")
    def reload() -> dict[str, Any]:
        """Load the active model from disk (after `callpilot train` in another process)."""
        holder.load(settings)
        if holder.error:
            raise HTTPException(422, holder.error)
        assert holder.engine is not None
        return holder.engine.info()

    @app.post("/webhooks/rest/webhook")
    def rest_webhook(body: Any = Body(...)) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            raise HTTPException(400, 'expected a JSON object like {"sender": "id", "message": "hi"}')
        if holder.engine is None and settings.brain == "builtin":
            raise HTTPException(503, holder.error or "the NLU model is still loading")
        replies = brain().rest(body)
        records.text.exchange(str(body.get("sender") or "default"), body["message"], replies)
        return replies

    @app.post("/webhook")
    def action_server(body: Any = Body(...)) -> JSONResponse:
        """Rasa's action-server protocol, so a Rasa server can run callpilot's actions."""
        status, reply = brain().action_server(body)
        return JSONResponse(reply, status_code=status)

    return app

"""The web app's assembly: the runtimes built in dependency order, their routes mounted, the lifespan that starts
and stops them. The app's own routes (health, /model/parse, the REST channel, the action server) are
`callpilot.routes`; who may call what, and which setting opens or closes it: docs/security.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.nlu import NLUEngine
from callpilot.bodylimit import MaxBodySize
from callpilot.brains import LazyBrain
from callpilot.desk_history import RecordsDeskHistory
from callpilot.handoff_port import HandoffRuntime, wrap_up_to_file
from callpilot.leader import AlertStates, Leader
from callpilot.lifecycle import Runtimes
from callpilot.logsafety import install_secret_masking
from callpilot.memdump import install_memory_dump
from callpilot.nlu_holder import ModelHolder
from callpilot.ops.history_web import mount_history
from callpilot.ops.web import OpsDelivery, OpsRuntime, mount_ops
from callpilot.records.db import Database
from callpilot.records.runtime import RecordsRuntime, mount_records
from callpilot.routes import action_server_on, router
from callpilot.settings import Settings
from callpilot.site import mount_site
from callpilot.supervisor_keys import ApiKeySessions, secure_cookies
from callpilot.taskdump import install_task_dump
from callpilot.trainer.page import mount_trainer
from callpilot.trainer.runtime import TrainerRuntime
from callpilot.voice import VoiceRuntime
from callpilot.voice_routes import mount_voice
from callpilot.voicemails import RecordsVoicemails
from callpilot.wallboard import RecordsQueueDay
from handoff.desk import mount_desk
from handoff.desk_parts import DeskParts
from handoff.redis_conn import RedisLink

log = logging.getLogger("callpilot")


def create_app(settings: Settings, *, engine: NLUEngine | None = None, database: Database | None = None) -> FastAPI:
    """Assemble the app; the model loads in the background unless one is given. `database`: the records'
    (else the one `settings` names).

    Each runtime gets its collaborators in its constructor, so they are built in dependency order; the lifespan
    starts them in that order and stops them in reverse (`Runtimes`)."""
    holder = ModelHolder(engine)
    if action_server_on(settings) and not settings.action_token:
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
        install_task_dump()  # kill -USR1: every asyncio task and where it waits, in the log
        install_memory_dump()  # kill -USR2: RSS, objects by type and what grew since the last dump
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
    # The REST channel's and the action server's brain; its turns feed the trainer's inbox (builtin or Rasa).
    app.state.brain = LazyBrain(settings, holder, on_engine=trainer.attach, heard=trainer.recorder.heard)
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

    app.include_router(router)  # /health, /model, /model/parse, /webhooks/rest/webhook, /webhook
    return app

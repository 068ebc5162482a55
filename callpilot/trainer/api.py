"""`/api/v1/trainer/...`: the workbench's every action, for trainer and admin API keys (others get 403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from callpilot.records.apikeys import Principal
from callpilot.records.db import get_session
from callpilot.trainer.auth import trainer_key
from callpilot.trainer.bodies import (
    Activation,
    Annotation,
    ClusterAnnotation,
    ExampleEdit,
    ExampleIn,
    ItemIds,
    ResponseIn,
)
from callpilot.trainer.data_edit import EditRefused, VersionConflict, add_examples, replace_example, set_response
from callpilot.trainer.inbox_view import annotate, dismiss, listing, mark_out_of_scope
from callpilot.trainer.jobs import JobBusy
from callpilot.trainer.markup import example_line
from callpilot.trainer.models import NeedsOverride, model_list
from callpilot.trainer.runtime import TrainerRuntime


def runtime(request: Request) -> TrainerRuntime:
    trainer: TrainerRuntime | None = getattr(request.app.state, "trainer", None)
    if trainer is None:
        raise HTTPException(503, "the trainer's workbench is not running")
    return trainer


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, VersionConflict):
        return HTTPException(409, str(exc))
    if isinstance(exc, EditRefused):
        return HTTPException(422, {"message": "the edit was refused; nothing was written", "problems": exc.problems})
    if isinstance(exc, LookupError):
        return HTTPException(404, str(exc))
    return HTTPException(422, str(exc))


EDIT_ERRORS = (VersionConflict, EditRefused, LookupError, ValueError)


# Mounted twice (`page.mount_trainer`): at /api/v1/trainer for scripts (bearer keys, in the OpenAPI schema) and at
# /trainer/api for the page (its session cookie is scoped to /trainer).
router = APIRouter(tags=["trainer"])



@router.get("/inbox")
def inbox(request: Request, status: str = Query("open"), limit: int = Query(500, ge=1, le=5000),
          session: Session = Depends(get_session), _: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Caller turns the bot did not handle (fallback, low confidence, corrected, handoff), most seen first, and
    their clusters by meaning (`name`: the most central text). Each item: id, text, reason, predicted_intent,
    confidence, count, call_id and transcript_url."""
    engine = request.app.state.holder.engine
    try:
        return listing(session, status=status, limit=limit,
                       vectorise=engine.encoder.encode if engine is not None else None)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post("/inbox/{item_id}/annotate")
def annotate_item(item_id: int, body: Annotation, trainer: TrainerRuntime = Depends(runtime),
                  if_match: str | None = Header(None), session: Session = Depends(get_session),
                  who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Assign the item to an intent (`new_intent: true` creates it), entities as character spans; the
    example goes into the file where the intent lives. 409: the data changed since `version`; 422: refused."""
    try:
        version = annotate(session, trainer.editor, [item_id], body.intent, by=who.actor,
                           entities=[e.model_dump() for e in body.entities], new_intent=body.new_intent,
                           version=body.version or if_match)
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"id": item_id, "status": "done", "intent": body.intent, "version": version}


@router.post("/inbox/annotate")
def annotate_cluster(body: ClusterAnnotation, trainer: TrainerRuntime = Depends(runtime),
                     session: Session = Depends(get_session),
                     who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Assign several items (a cluster) to one intent, or create an intent from them. Each of `items` carries
    the entity spans marked on its own text (`start`/`end` into that item's text), so each example is written
    with its own `[value](entity)` markup; `item_ids` are items without entities. 422 names every item whose
    spans do not fit its text or whose entity the domain does not declare, and then nothing is written."""
    ids = body.ids()
    try:
        version = annotate(session, trainer.editor, ids, body.intent, by=who.actor,
                           entities=[e.model_dump() for e in body.entities], item_entities=body.item_entities(),
                           new_intent=body.new_intent, version=body.version)
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"item_ids": ids, "status": "done", "intent": body.intent, "version": version}


@router.post("/inbox/out_of_scope")
def out_of_scope(body: ItemIds, trainer: TrainerRuntime = Depends(runtime),
                 session: Session = Depends(get_session), who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """The bot should not answer these: they become `out_of_scope` examples."""
    try:
        version = mark_out_of_scope(session, trainer.editor, body.item_ids, by=who.actor, version=body.version)
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"item_ids": body.item_ids, "status": "out_of_scope", "version": version}


@router.post("/inbox/dismiss")
def dismiss_items(body: ItemIds, session: Session = Depends(get_session),
                  who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Leave the inbox without a change to the data (kept, with who and when)."""
    try:
        dismiss(session, body.item_ids, by=who.actor)
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"item_ids": body.item_ids, "status": "dismissed"}


@router.get("/data")
def data(trainer: TrainerRuntime = Depends(runtime), _: Principal = Depends(trainer_key)) -> JSONResponse:
    """The intents with their example counts and files, the domain's entities, the responses, and the data's
    version (ETag)."""
    try:
        folder = trainer.editor.read()
        body = {"version": folder.version, "intents": folder.intents(), "entities": folder.entities(),
                "responses": folder.responses()}
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return JSONResponse(body, headers={"ETag": folder.version, "Cache-Control": "no-store"})


@router.get("/data/intents/{intent}")
def intent_examples(intent: str, trainer: TrainerRuntime = Depends(runtime),
                    _: Principal = Depends(trainer_key)) -> dict[str, Any]:
    folder = trainer.editor.read()
    file = folder.intent_file(intent)
    if file is None:
        raise HTTPException(404, f"unknown intent {intent!r}")
    return {"intent": intent, "file": file, "examples": folder.examples(intent), "version": folder.version}


@router.post("/data/intents/{intent}/examples")
def add_example(intent: str, body: ExampleIn, trainer: TrainerRuntime = Depends(runtime),
                if_match: str | None = Header(None), who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    try:
        line = example_line(body.text, [e.model_dump() for e in body.entities])
        version = trainer.editor.save(body.version or if_match, lambda f: add_examples(f, intent, [line]),
                                      author=who.actor, message=f"trainer: example for {intent}")
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"intent": intent, "example": line, "version": version}


@router.put("/data/intents/{intent}/examples")
def edit_example(intent: str, body: ExampleEdit, trainer: TrainerRuntime = Depends(runtime),
                 if_match: str | None = Header(None), who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Replace example `old` by `new`, or delete it (`new` null)."""
    try:
        new = example_line(body.new) if body.new is not None else None
        version = trainer.editor.save(body.version or if_match,
                                      lambda f: replace_example(f, intent, body.old, new),
                                      author=who.actor, message=f"trainer: example of {intent} edited")
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"intent": intent, "version": version}


@router.put("/data/responses/{name}")
def edit_response(name: str, body: ResponseIn, trainer: TrainerRuntime = Depends(runtime),
                  if_match: str | None = Header(None), who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Set a response's texts (a new response is added), or delete it (`texts` null)."""
    try:
        version = trainer.editor.save(body.version or if_match, lambda f: set_response(f, name, body.texts),
                                      author=who.actor, message=f"trainer: response {name}")
    except EDIT_ERRORS as exc:
        raise _refused(exc) from None
    return {"response": name, "version": version}


@router.post("/train", status_code=202)
def train(trainer: TrainerRuntime = Depends(runtime), who: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Start a training in the background (one at a time: 409 while one runs); poll `GET jobs/{id}`."""
    try:
        job = trainer.start_training(who.actor)
    except JobBusy as exc:
        raise HTTPException(409, str(exc)) from None
    return job.status()


@router.get("/jobs/{job_id}")
def job(job_id: str, trainer: TrainerRuntime = Depends(runtime),
        _: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """running | succeeded | failed; progress; then the evaluation (held-out accuracy and per-intent F1 of
    new vs active, examples that got worse, conversation tests, inbox items now handled) or the error."""
    found = trainer.jobs.get(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found.status()


@router.get("/models")
def models(request: Request, _: Principal = Depends(trainer_key)) -> list[dict[str, Any]]:
    """The kept models (`keep_models`), newest first, the active one marked."""
    return model_list(request.app.state.settings.models_dir)


@router.post("/models/{model_id}/activate")
def activate(model_id: str, body: Activation | None = None, trainer: TrainerRuntime = Depends(runtime),
             _: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Put a kept model live in every process (NLU, domain, rules, responses, IVR at once; calls continue).
    409 when it fails conversation tests and `override` is not set."""
    try:
        return trainer.switcher.activate(model_id, override=bool(body and body.override))
    except NeedsOverride as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/models/{model_id}/rollback")
def rollback(model_id: str, trainer: TrainerRuntime = Depends(runtime),
             _: Principal = Depends(trainer_key)) -> dict[str, Any]:
    """Go back to an earlier kept model (its data snapshot too); no conversation-test gate."""
    try:
        return trainer.switcher.activate(model_id, override=True)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None

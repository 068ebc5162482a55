"""`callpilot inbox` and `callpilot models list|activate ID`: the workbench for terminal users."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from callpilot.settings import Settings, SettingsError

models_app = typer.Typer(help="The kept NLU models: list them, activate one (or roll back).", no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file of settings.")]


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config, os.environ)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def inbox(
    status: Annotated[str, typer.Option(help="open, done, out_of_scope or dismissed.")] = "open",
    limit: Annotated[int, typer.Option(help="At most this many items.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item.")] = False,
    config: ConfigOpt = None,
) -> None:
    """What callers said that the bot did not handle, most seen first (assign them on the /trainer page)."""
    from callpilot.records.db import Database
    from callpilot.trainer.inbox_view import listing

    database = Database.from_settings(_settings(config))
    database.upgrade()
    try:
        with database.session() as session:
            items = listing(session, status=status, limit=limit)["items"]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    for item in items:
        if as_json:
            typer.echo(json.dumps(item, ensure_ascii=False))
        else:
            guess = f"{item['predicted_intent']} {item['confidence']:.2f}" if item["confidence"] is not None else "-"
            typer.echo(f"{item['id']:>6}  {item['count']:>4}x  {item['reason']:<14} {guess:<28} {item['text']}")
    if not items and not as_json:
        typer.echo(f"the inbox has no {status} items")


@models_app.command("list")
def models_list(config: ConfigOpt = None) -> None:
    """The kept models, newest first; * marks the active one."""
    from callpilot.trainer.models import model_list

    for model in model_list(_settings(config).models_dir):
        held = (model["evaluation"] or {}).get("held_out") or {}
        accuracy = f"held-out {held['new']['accuracy']:.3f}" if held else ""
        broken = "fails conversation tests" if model["breaks_conversations"] else ""
        typer.echo(f"{'*' if model['active'] else ' '} {model['id']}  {model['intents']} intents  {accuracy}  {broken}")


@models_app.command("activate")
def models_activate(
    model_id: Annotated[str, typer.Argument(help="A model id from `callpilot models list`.")],
    override: Annotated[bool, typer.Option(help="Even if it fails conversation tests.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Make MODEL_ID the active model: servers sharing `redis_url` switch now, any server on its next start."""
    from bot.nlu.storage import set_active
    from callpilot.trainer.models import model_list

    settings = _settings(config)
    found = {m["id"]: m for m in model_list(settings.models_dir)}
    if model_id not in found:
        typer.echo(f"error: no kept model {model_id!r} in {settings.models_dir}/ (callpilot models list)", err=True)
        raise typer.Exit(1)
    if found[model_id]["breaks_conversations"] and not override:
        typer.echo(f"error: {model_id} fails conversation tests; add --override to activate it anyway", err=True)
        raise typer.Exit(1)
    set_active(settings.models_dir, model_id)
    if settings.redis_url:
        from callpilot.trainer.broadcast import ModelBroadcast

        broadcast = ModelBroadcast(settings.redis_url, lambda _: None)
        broadcast.publish(model_id)
        broadcast.client.close()
    typer.echo(f"{model_id} is active" + (" (running servers told over Redis)" if settings.redis_url else
                                          " (running servers load it when they restart)"))

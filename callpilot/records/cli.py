"""`callpilot db upgrade`, `callpilot apikey create|list|revoke`, `callpilot records purge`."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.urls import mask_url
from callpilot.settings import Settings, SettingsError

db_app = typer.Typer(help="The call records database.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for /api/v1 (roles: admin, supervisor, agent, trainer).",
                         no_args_is_help=True)
records_app = typer.Typer(help="Call records: retention.", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file of settings.")]


def _database(config: Path | None):  # type: ignore[no-untyped-def]
    from callpilot.records.db import Database

    try:
        settings = Settings.load(config, os.environ)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return Database.from_settings(settings)


def _upgraded(config: Path | None):  # type: ignore[no-untyped-def]
    database = _database(config)
    database.upgrade()
    return database


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the records tables to the newest schema (safe to run again)."""
    from callpilot.records.migrate import current_revision

    database = _upgraded(config)
    typer.echo(f"database at revision {current_revision(database.engine)}: "
               f"{mask_url(database.engine.url.render_as_string(hide_password=False))}")


@apikey_app.command("create")
def apikey_create(
    role: Annotated[str, typer.Option(help="admin, supervisor, agent or trainer.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
    agent: Annotated[str | None, typer.Option(help="Role agent: the agent id whose calls the key may see.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print it once (only its salted hash is stored)."""
    from callpilot.records.apikeys import MissingAgent, UnknownRole, check_role, create_key

    try:
        check_role(role)
    except UnknownRole as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with _upgraded(config).session() as session:
        try:
            key = create_key(session, role, name, agent_id=agent)
        except MissingAgent as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(key)
    typer.echo("store it now: it cannot be shown again", err=True)


@apikey_app.command("list")
def apikey_list(config: ConfigOpt = None) -> None:
    """Key ids, names, roles and state (never the keys themselves)."""
    from callpilot.records.apikeys import list_keys

    with _upgraded(config).session() as session:
        keys = list_keys(session)
    typer.echo(f"{'key id':<14} {'role':<11} {'state':<8} {'created':<20} name")
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        agent = f" (agent {key.agent_id})" if key.agent_id else ""
        typer.echo(f"{key.key_id:<14} {key.role:<11} {state:<8} {key.created_at:%Y-%m-%d %H:%M:%S}  {key.name}{agent}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key id (see `apikey list`).")],
                  config: ConfigOpt = None) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from callpilot.records.apikeys import revoke_key

    with _upgraded(config).session() as session:
        found = revoke_key(session, key_id.removeprefix("cp_").split("_")[0])
    if not found:
        typer.echo(f"error: no key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@records_app.command("purge")
def records_purge(
    now: Annotated[str | None, typer.Option(help="Pretend it is this time (ISO 8601, UTC if no zone).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Delete recordings past their retention (files and database fields), with an audit entry each."""
    from callpilot.records.retention import purge

    moment = datetime.now(UTC)
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            typer.echo(f"error: --now {now!r}: expected ISO 8601, e.g. 2026-05-01T00:00:00Z", err=True)
            raise typer.Exit(2) from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    done = purge(_upgraded(config), moment)
    for item in done:
        typer.echo(f"purged {item.call_id}: {item.path} (expired {item.expired_at.isoformat()})")
    typer.echo(f"{len(done)} recording(s) purged")

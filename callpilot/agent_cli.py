"""`callpilot agent add|list|remove`: the agent directory (tokens are shown once, stored hashed)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from callpilot.settings import Settings, SettingsError
from handoff import agent_directory
from handoff.directory import AgentDirectory, parse_skills
from handoff.errors import RedisUnavailable, UnknownAgent

agent_app = typer.Typer(help="Agents who take handed-over calls (skills, tokens).", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file of settings.")]


def _directory(config: Path | None) -> AgentDirectory:
    try:
        settings = Settings.load(config, os.environ)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        return agent_directory(settings)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@agent_app.command("add")
def agent_add(
    name: Annotated[str, typer.Argument(help="The agent's name, e.g. 'Ann Lee'.")],
    skills: Annotated[str, typer.Option("--skills", help="Queues and levels 1-5: orders,tech:4 (default 3).")],
    expires_days: Annotated[float | None, typer.Option("--expires-days", help="The token expires after.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Register an agent and print its login token alone on stdout (once: only its hash is stored)."""
    directory = _directory(config)
    try:
        agent, token = directory.add(name, parse_skills(skills),
                                     expires_in_s=expires_days * 86400 if expires_days else None)
    except (ValueError, RedisUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    levels = ", ".join(f"{s}:{lvl}" for s, lvl in sorted(agent.skills.items()))
    typer.echo(token)  # alone on stdout, like `apikey create`'s key: TOKEN=$(callpilot agent add ...)
    typer.echo(f"added agent {agent.agent_id} ({agent.name}; skills {levels}) to {directory.where}", err=True)
    typer.echo("that is the agent's sign-in token for /agent: store it now, it cannot be shown again", err=True)


@agent_app.command("list")
def agent_list(config: ConfigOpt = None) -> None:
    """Agents, their skills and when their token expires."""
    try:
        agents = _directory(config).agents()
    except RedisUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not agents:
        typer.echo("no agents yet: callpilot agent add NAME --skills orders,tech")
        return
    for agent in agents:
        levels = ",".join(f"{s}:{lvl}" for s, lvl in sorted(agent.skills.items()))
        expires = (datetime.fromtimestamp(agent.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
                   if agent.expires_at else "never")
        phone = f"\tphone {agent.phone}" if agent.phone else ""
        typer.echo(f"{agent.agent_id}\t{agent.name}\t{levels}\ttoken expires {expires}{phone}")


@agent_app.command("phone")
def agent_phone(
    agent_id: Annotated[str, typer.Argument(help="The agent's id (see list).")],
    phone: Annotated[str, typer.Argument(help="'sip' (registers to callpilot), sip:user@host[:port], a number "
                                              "such as +8613812345678 (through the trunk), or 'none'.")],
    sip_password: Annotated[str | None, typer.Option("--sip-password", envvar="CALLPILOT_AGENT_SIP_PASSWORD",
                                                     help="The phone's SIP password (for 'sip').")] = None,
    config: ConfigOpt = None,
) -> None:
    """Give an agent a phone that rings for their calls (besides the browser desktop)."""
    from voice_gateway.transports.sip.registrar import ha1

    directory = _directory(config)
    value = None if phone.strip().lower() == "none" else phone.strip()
    try:
        agent = directory.set_phone(agent_id, value, sip_ha1=ha1(agent_id, sip_password) if sip_password else None)
    except (ValueError, UnknownAgent, RedisUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if agent.phone == "sip":
        typer.echo(f"agent {agent_id}: a SIP phone registering as user {agent_id!r} (realm 'callpilot') "
                   "to callpilot's SIP port")
    else:
        typer.echo(f"agent {agent_id}: phone {agent.phone or 'none'}")


@agent_app.command("remove")
def agent_remove(agent_id: Annotated[str, typer.Argument(help="The agent's id (see list).")],
                 config: ConfigOpt = None) -> None:
    """Remove an agent; its token stops working at once, in every process."""
    try:
        _directory(config).remove(agent_id)
    except (UnknownAgent, RedisUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"removed agent {agent_id}")

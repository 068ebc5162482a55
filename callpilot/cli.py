"""The `callpilot` command: run, train, parse, chat, test, data validate."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from callpilot.agent_cli import agent_app
from callpilot.records.cli import apikey_app, db_app, records_app
from callpilot.settings import Settings, SettingsError
from callpilot.trainer.cli import inbox, models_app

app = typer.Typer(help="callpilot: an AI-first contact centre for your hotline.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
test_app = typer.Typer(help="Evaluate the NLU model or run conversation tests.", no_args_is_help=True)
data_app = typer.Typer(help="Check the training data in nlu_data/.", no_args_is_help=True)
app.add_typer(test_app, name="test")
app.add_typer(data_app, name="data")
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(records_app, name="records")
app.add_typer(agent_app, name="agent")
app.add_typer(models_app, name="models")
app.command("inbox")(inbox)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file of settings.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Training data folder (default nlu_data).")]


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return Settings.load(config, os.environ, **overrides)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def _load_project(data_dir: Path):  # type: ignore[no-untyped-def]
    from bot.training_data import format_problems, load_project
    from bot.training_data.model import DataError

    try:
        return load_project(data_dir)
    except DataError as exc:
        raise _fail(format_problems(exc.problems)) from None
    except FileNotFoundError as exc:
        raise _fail(f"error: {exc}") from None


def _load_engine(settings: Settings):  # type: ignore[no-untyped-def]
    from bot.nlu import ModelNotFound, load, train_project

    try:
        return load(settings.models_dir)
    except ModelNotFound:
        typer.echo("no trained model yet: training one first", err=True)
        return train_project(_load_project(settings.data_dir), settings.models_dir).engine


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    audiosocket_port: Annotated[int | None, typer.Option(help="Asterisk AudioSocket TCP port (0 = off).")] = None,
    sip_port: Annotated[int | None, typer.Option(help="SIP UDP port (0 = off), e.g. 5060.")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes on the same port (needs Redis).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Start the server (HTTP API, REST channel, action-server webhook, voice gateway)."""
    import uvicorn

    from callpilot.app import create_app

    overrides: dict[str, object] = {"host": host, "port": port, "audiosocket_port": audiosocket_port,
                                    "sip_port": sip_port, "workers": workers}
    settings = _settings(config, **overrides)
    from voice_gateway.memory import limit_arenas

    limit_arenas(settings.malloc_arenas)  # before the server starts its threads and its ASR workers
    if settings.workers > 1 and settings.worker_index is None:
        from callpilot.workers import Supervisor

        _prepare_for_workers(settings)
        raise typer.Exit(Supervisor(settings, config, overrides).run())
    if settings.worker_index is not None:
        from callpilot.workers import serve_as_worker

        serve_as_worker(create_app(settings), settings)
        return
    # No permessage-deflate: compressing 50 audio messages a second per call costs the loop more than it saves
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                ws_per_message_deflate=False)


def _prepare_for_workers(settings: Settings) -> None:
    """What every worker would otherwise do at once: the records schema, and a trained model."""
    from bot.nlu.storage import active_id
    from callpilot.records.db import Database

    database = Database.from_settings(settings)
    try:
        database.upgrade()
    finally:
        database.dispose()
    if active_id(settings.models_dir) is None:
        _load_engine(settings)


@app.command()
def call(
    wav: Annotated[Path, typer.Option("--wav", help="Caller audio (WAV, mono; resampled to 8 kHz).")],
    transport: Annotated[str, typer.Option(help="twilio or audiosocket.")] = "twilio",
    dtmf: Annotated[list[str] | None, typer.Option(help="Key presses as DIGIT@SECONDS, e.g. 1@3.5.")] = None,
    realtime: Annotated[bool, typer.Option("--realtime/--fast", help="Real-time pacing, or faster.")] = True,
    out: Annotated[Path | None, typer.Option(
        help="Where to save the bot's audio (default: <results_dir>/calls/<call id>-bot.wav).")] = None,
    url: Annotated[str | None, typer.Option(help="Server base URL (default from settings).")] = None,
    tail: Annotated[float, typer.Option(help="Most seconds of silence to wait for the bot.")] = 20.0,
    caller_number: Annotated[str | None, typer.Option(
        "--caller-number", help="The number the call comes from, e.g. +16175550142 (a demo customer's, to "
                                "see the agent's screen pop); over AudioSocket it travels in the call's UUID.")] = None,
    wait_for_greeting: Annotated[bool, typer.Option(
        "--wait-for-greeting", help="Stay silent until the bot's greeting is over, then play WAV.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Call the running server like a phone would, play WAV, save the bot's audio and print both sides."""
    from callpilot.voice import place_call

    settings = _settings(config)
    try:
        place_call(settings, wav, transport=transport, dtmf=dtmf or [], realtime=realtime, out=out, url=url,
                   tail_s=tail, caller_number=caller_number, wait_for_greeting=wait_for_greeting)
    except (OSError, ValueError) as exc:
        raise _fail(f"error: {exc}") from None


@app.command()
def train(
    force: Annotated[bool, typer.Option(help="Train even if an up-to-date model exists.")] = False,
    config: ConfigOpt = None,
    data: DataOpt = None,
) -> None:
    """Train the NLU model from nlu_data/ (skipped when the data has not changed)."""
    from tqdm import tqdm

    from bot.nlu import model_id_for, train_project
    from bot.nlu.engine import NLUConfig
    from bot.nlu.storage import active_id, set_active

    settings = _settings(config, data_dir=data)
    project = _load_project(settings.data_dir)
    for warning in project.warnings:
        typer.echo(str(warning), err=True)
    nlu_config = NLUConfig(encoder=settings.encoder)
    model_id = model_id_for(project, nlu_config)
    if not force and (settings.models_dir / model_id / "meta.json").exists():
        if active_id(settings.models_dir) != model_id:
            set_active(settings.models_dir, model_id)
        typer.echo(f"model {model_id} is up to date ({settings.models_dir / model_id})")
        return
    bar = tqdm(total=4, desc="training", unit="step", file=sys.stderr)

    def progress(message: str, step: int, total: int) -> None:
        bar.set_description(message)
        bar.n = step
        bar.refresh()

    started = time.perf_counter()
    outcome = train_project(project, settings.models_dir, config=nlu_config, force=force, progress=progress)
    bar.close()
    typer.echo(f"trained {outcome.engine.model_id} in {time.perf_counter() - started:.1f} s "
               f"({len(project.nlu.examples)} examples, {len(project.nlu.intents)} intents)")


@app.command()
def parse(
    text: Annotated[str, typer.Argument(help="Text to parse, or - to read one text per line from stdin.")],
    config: ConfigOpt = None,
    language: Annotated[str | None, typer.Option(
        help="Parse as this language (en, zh) instead of detecting each text's.")] = None,
) -> None:
    """Print the parse of TEXT as JSON (Rasa's format, plus the `language` it was parsed in)."""
    settings = _settings(config)
    if language is not None and language not in settings.languages:
        raise typer.BadParameter(f"not one of the line's languages ({', '.join(settings.languages)})",
                                 param_hint="--language")
    engine = _load_engine(settings)
    if text != "-":
        typer.echo(json.dumps(engine.parse(text, language=language), ensure_ascii=False, indent=2))
        return
    for line in sys.stdin:
        typer.echo(json.dumps(engine.parse(line.rstrip("\n"), language=language), ensure_ascii=False))
        sys.stdout.flush()


@app.command()
def chat(
    debug: Annotated[bool, typer.Option(help="Show intent, confidence, slots and IVR state.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Talk to the bot in the terminal; a digit, * or # is a key press."""
    from bot.dialogue.channels import run_chat
    from callpilot.brains import build_dialogue
    from callpilot.trainer.chat_inbox import chat_inbox

    settings = _settings(config)
    engine = build_dialogue(settings, _load_engine(settings))
    typer.echo("callpilot chat: type as a caller would; digits, * and # are key presses; /quit ends.")
    with chat_inbox(settings, engine):  # what the bot did not understand goes to the trainer's inbox
        run_chat(engine, input, typer.echo, debug)


@test_app.command("nlu")
def test_nlu(
    cross_validation: Annotated[int | None, typer.Option("--cross-validation", help="Number of folds.")] = None,
    test_fraction: Annotated[float, typer.Option(help="Held-out share when not cross-validating.")] = 0.2,
    out: Annotated[Path | None, typer.Option(help="Report folder (default results/).")] = None,
    config: ConfigOpt = None,
    data: DataOpt = None,
) -> None:
    """Evaluate the NLU on held-out data: per-intent P/R/F1, confusion matrix, errors."""
    from bot.nlu.evaluate import cross_validate, held_out, write_reports

    settings = _settings(config, data_dir=data)
    project = _load_project(settings.data_dir)
    entities = set(project.domain.entities)
    if cross_validation is not None:
        if cross_validation < 2:
            raise _fail("error: --cross-validation needs at least 2 folds")
        ev = cross_validate(project.nlu, entities, cross_validation)
    else:
        ev = held_out(project.nlu, entities, test_fraction=test_fraction)
    paths = write_reports(ev, out or settings.results_dir)
    report = ev.report()
    typer.echo(f"{'intent':<26} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}")
    for name, row in sorted(report.items()):
        if isinstance(row, dict) and "support" in row and name not in ("macro avg", "weighted avg", "entities"):
            typer.echo(f"{name:<26} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                       f"{row['f1-score']:>6.3f} {int(row['support']):>4}")
    ents = report["entities"]
    typer.echo(f"\nintent accuracy {ev.accuracy:.3f} on {len(ev.examples)} held-out examples; "
               f"entities P {ents['precision']:.3f} R {ents['recall']:.3f} F1 {ents['f1']:.3f}")
    typer.echo("reports: " + ", ".join(str(p) for p in paths.values()))


@test_app.command("conversations")
def test_conversations(
    folder: Annotated[Path, typer.Argument(help="Folder of conversation YAML files.")] = Path(
        "tests/conversations"
    ),
    config: ConfigOpt = None,
) -> None:
    """Run scripted conversations (tests/conversations/*.yml) against the bot."""
    from bot.dialogue.conversation_tests import Clock, run_conversation_dir
    from bot.dialogue.engine import DialogueEngine
    from bot.dialogue.factory import build_engine
    from callpilot.brains import dialogue_settings

    settings = _settings(config)
    interpreter = _load_engine(settings)

    def factory(now: Clock) -> DialogueEngine:
        return build_engine(settings.data_dir, interpreter, settings=dialogue_settings(settings), now=now)

    results = run_conversation_dir(folder, factory)
    for result in results:
        typer.echo(result.report())
    failed = sum(not r.passed for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed or not results:
        raise typer.Exit(1)


@data_app.command("validate")
def data_validate(data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Check nlu_data/ and report every problem as file:line: reason."""
    from bot.ivr import load_ivr
    from bot.training_data import format_problems, validate_project
    from bot.training_data.model import DataError

    settings = _settings(config, data_dir=data)
    if not settings.data_dir.is_dir():
        raise _fail(f"error: {settings.data_dir}: no such folder")
    problems = validate_project(settings.data_dir)
    ivr_file = settings.data_dir / "ivr.yml"
    if ivr_file.exists():
        try:
            problems += list(load_ivr(ivr_file).warnings)
        except DataError as exc:
            problems += exc.problems
    errors = [p for p in problems if p.severity == "error"]
    typer.echo(format_problems(problems) if problems else f"{settings.data_dir}: no problems found")
    if errors:
        raise typer.Exit(1)


def main() -> None:
    app()

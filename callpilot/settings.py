"""Typed settings: defaults < `--config FILE` (YAML) < `CALLPILOT_*` environment < command-line flags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callpilot.ops.config import DEFAULT_ALERT_RULES, AlertRule, WebhookTarget
from handoff.config import HandoffConfig

ENV_PREFIX = "CALLPILOT_"
ENGLISH_ONLY_ASR = ("whisper-tiny.en", "moonshine")


DEFAULT_LANGUAGES: tuple[Literal["en", "zh"], ...] = ("en", "zh")


class SipAccount(BaseModel):
    """One registration at a SIP provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    registrar: str = Field(pattern=r"^sips?:[^@\s]+$")
    user: str = Field(min_length=1)
    password: str
    expires: int = Field(300, ge=60, le=86400)


class LineSettings(BaseModel):
    """One of the numbers callpilot answers (the dialled number picks it): its name, the language its callers
    are greeted in, and its own backup number."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=80)
    language: Literal["en", "zh"] | None = None
    backup_number: str | None = Field(None, pattern=r"^(\+?\d{3,20}|sips?:[^@\s]+@[^\s]+)$")


def line_key(number: str) -> str:
    """The digits of a dialled number (a URI's user part, "+" and separators dropped): the `lines` key."""
    user = number.split(":", 1)[-1].split("@", 1)[0] if number.startswith(("sip:", "sips:", "tel:")) else number
    return "".join(ch for ch in user if ch.isdigit())


def same_number(a: str, b: str) -> bool:
    """Two numbers' digits name the same line: equal, or one is the other with a country code in front."""
    if not a or not b:
        return False
    return a == b or (min(len(a), len(b)) >= 7 and (a.endswith(b) or b.endswith(a)))


class SettingsError(ValueError):
    """A setting has a bad value; the message names it and the source."""


class Settings(BaseModel):
    """Everything an operator can configure, grouped by concern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Server
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Server processes on the same port (SO_REUSEPORT), sharing the floor through Redis (callpilot/workers.py);
    # worker_index is set by the supervisor in each worker's environment.
    workers: int = Field(1, ge=1, le=64)
    worker_index: int | None = Field(None, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The address callers and browsers reach us at (https://callpilot.example.com) when behind a proxy;
    # an https one marks the sign-in cookies Secure.
    public_url: str | None = None
    # Paths
    data_dir: Path = Path("nlu_data")
    models_dir: Path = Path("models")
    results_dir: Path = Path("results")
    state_dir: Path = Path("var")  # runtime state: the SQLite database, the agent directory
    # NLU
    encoder: str = "all-MiniLM-L6-v2"
    fallback_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # The trainer's workbench (callpilot.trainer)
    inbox_confidence_threshold: float = Field(0.5, ge=0.0, le=1.0)  # caller turns understood less surely: inbox
    train_niceness: int = Field(10, ge=0, le=19)  # the background training's `nice` (calls come first)
    held_out_data: Path | None = Path("held_out/nlu.yml")  # Rasa NLU YAML never trained on: models compared on it
    conversation_tests_dir: Path | None = Path("tests/conversations")  # a new model must pass these to go live
    keep_models: int = Field(5, ge=1)  # trained models kept for activation and roll-back (the active one always)
    # The line's languages, the first its default: spoken until a caller's language is known (detected from what
    # they say, per turn, or picked from the language menu a silent caller hears). A 400 line: zh,en.
    languages: list[Literal["en", "zh"]] = Field(default_factory=lambda: list(DEFAULT_LANGUAGES), min_length=1)
    # Dialogue
    brain: Literal["builtin", "rasa"] = "builtin"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout: float = Field(10.0, gt=0)
    fallbacks_before_escalation: int = Field(2, ge=1)
    no_input_before_ivr: int = Field(2, ge=1)
    form_failures_before_handoff: int = Field(2, ge=1)
    # Caller verification before an order is changed, cancelled or its invoice sent
    verification_attempts: int = Field(3, ge=1)  # wrong answers to the security question before refusing
    verification_secret: str | None = None  # HMAC key of the Rasa brain's verification seal (None: per process)
    # action name -> URL of a Rasa SDK action server's /webhook
    remote_actions: dict[str, str] = Field(default_factory=dict)
    # Security: POST /webhook (our actions for a Rasa server) is served with `brain: rasa` or `action_server`,
    # and only to requests that carry `action_token` (Rasa sends it as ?token=, from the exported endpoints.yml).
    action_server: bool = False
    action_token: str | None = Field(None, min_length=16)
    rest_channel_token: str | None = Field(None, min_length=16)  # a bearer key the REST channel then requires
    # Limits
    max_text_chars: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)  # larger HTTP request bodies get 413
    session_store_max: int = Field(10_000, ge=1)  # in-memory conversation states kept (least recently used go)
    # Voice gateway
    asr_engine: Literal["whisper-tiny.en", "moonshine", "whisper-base", "vosk"] = "whisper-tiny.en"
    tts_engine: Literal["hibari", "piper", "espeak", "chain"] = "hibari"
    # edge-tts's neural voices first (en-US / zh-CN) when its service answers within 250 ms, the offline
    # voices otherwise (and for 60 s after a failure): off by default, the product works offline
    tts_network_voices: bool = False
    asr_processes: int = Field(2, ge=0, le=16)  # whisper decodes in worker processes (0: in the server)
    asr_vosk_model_dir: Path | None = None  # the vosk model folder (am/, conf/ ...), needed by asr_engine vosk
    # whisper-base: "zh", "en" ... (None: the likeliest of `languages`, per turn); the other engines are English-only
    asr_language: str | None = None
    asr_cpu_threads: int = Field(1, ge=1, le=16)  # per decode
    asr_num_workers: int = Field(2, ge=1, le=16)  # decodes at once in one whisper model
    # glibc malloc arenas per process (server and ASR workers; 0: glibc's eight per core): fewer arenas, less
    # memory held by threads between bursts of calls
    malloc_arenas: int = Field(2, ge=0, le=64)
    audiosocket_port: int = Field(9092, ge=0, le=65535)  # 0 = off
    audiosocket_host: str = "127.0.0.1"  # AudioSocket has no authentication: Asterisk on this host only by default
    # SIP over UDP (callpilot answers trunks, softphones and desk phones itself): 0 = off. INVITEs are taken
    # only from `sip_allow` (a trunk's addresses); `sip_address` is the address put in SDP and Contact (the
    # one callers reach, behind NAT the public one; default: sip_host, or 127.0.0.1 when that is 0.0.0.0).
    sip_port: int = Field(0, ge=0, le=65535)
    sip_host: str = "127.0.0.1"
    sip_address: str | None = None
    sip_allow: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    # Providers that want callpilot registered (REGISTER with digest authentication, refreshed):
    # [{registrar: "sip:sip.provider.example:5060", user: "4008001234", password: "...", expires: 300}]
    sip_register: list[SipAccount] = Field(default_factory=list)
    # Calls callpilot places (agents' phone numbers, callbacks, transfers): numbers go to `sip_trunk`
    # ("sip:trunk.provider.example:5060"; the sip_register account at the same host gives the digest
    # credentials), shown to the called party as `sip_caller_id` (the 400 number).
    sip_trunk: str | None = Field(None, pattern=r"^sips?:[^@\s]+$")
    sip_caller_id: str = Field("callpilot", pattern=r"^[\w+.-]{1,40}$")
    agent_phone_wrap_up_s: float = Field(5.0, ge=0, le=600)  # after a call taken on a phone, then available
    # Callbacks callers chose are dialled (through SIP, or Twilio's Calls API on a Twilio line): busy or no
    # answer is tried again after callback_retry_s[n] seconds, up to callback_max_attempts; then "failed".
    # The backup number (a number, or a sip: address) new calls go to when callpilot cannot answer well: a
    # supervisor's switch, or (backup_when_unhealthy) while the voice models load or failed or the ASR keeps dying.
    backup_number: str | None = Field(None, pattern=r"^(\+?\d{3,20}|sips?:[^@\s]+@[^\s]+)$")
    backup_when_unhealthy: bool = True
    # One callpilot, several numbers: the dialled number (SIP Request-URI or To, Twilio's To) picks its line,
    # e.g. {"4008001234": {name: "400 hotline", language: zh}, "+18005550199": {name: "US", language: en}}
    lines: dict[str, LineSettings] = Field(default_factory=dict)
    callbacks_dialled: bool = True
    callback_max_attempts: int = Field(3, ge=1, le=10)
    callback_retry_s: list[float] = Field(default_factory=lambda: [120.0, 600.0], min_length=1)
    callback_ring_timeout_s: float = Field(30.0, gt=0, le=120)
    # Twilio: requests to /twilio/voice must carry a valid X-Twilio-Signature (HMAC-SHA1 with this token over
    # `public_url` + the form), and the media stream the per-call token the TwiML handed out. None: unverified
    # (a warning at start).
    twilio_auth_token: str | None = None
    # Twilio's REST API (with the auth token above): transfers redirect the live call to a <Dial>; on a line
    # with no SIP, callbacks are placed through the Calls API from `twilio_caller_id` (your Twilio number), and
    # Twilio fetches `public_url`/twilio/voice when the caller answers.
    twilio_account_sid: str | None = Field(None, pattern=r"^AC[0-9a-fA-F]{32}$")
    twilio_api_url: str = "https://api.twilio.com"
    twilio_caller_id: str | None = None
    # The browser softphone (/phone, /phone/ws) places bot calls with any caller number: None = on only while
    # the server listens on loopback (a demo on this machine), True/False = always on / off
    phone_enabled: bool | None = None
    phone_calls_per_minute: int = Field(6, ge=1, le=600)  # per client address
    # Every transport: the start message within this many seconds, a call at most this long, at most this many
    # calls at once in this process (more: Twilio gets <Reject reason="busy"/>, the others a clean close)
    call_start_timeout_s: float = Field(10.0, gt=0, le=300)
    max_call_s: float = Field(3600.0, gt=0)
    max_calls: int = Field(100, ge=1)
    shutdown_drain_s: float = Field(10.0, ge=0, le=600)  # on SIGTERM, AudioSocket calls may finish this long
    record_calls: bool = False
    # Transcribe both sides while an agent talks to a caller: live on the agent's desk and in the call's record
    # (costs an ASR stream per side for each agent call).
    agent_transcript: bool = True
    recordings_dir: Path = Path("results/recordings")
    recording_announcement: str | None = None  # None: the default "This call may be recorded..."
    call_log: Path = Path("results/calls.jsonl")
    # Silence that ends a caller's turn: shorter answers sooner, but may cut off callers who pause mid-sentence.
    end_of_turn_ms: int = Field(500, ge=300, le=3000)
    # "words": the caller's words at a pause move the end of the turn (a whole request ends after 250 ms, "my
    # order number is" waits 1,200 ms; bot/dialogue/turn_end.py); "silence": end_of_turn_ms alone.
    turn_end: Literal["words", "silence"] = "words"
    # Human handoff (handoff/): Redis state engine (None: an in-process fakeredis), queues, agents
    redis_url: str | None = None
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    # Call records (callpilot.records)
    database_url: str | None = None  # None: SQLite file <state_dir>/callpilot.db; or postgresql+psycopg://...
    recording_retention_days: int = 90  # default policy: 30, 90 or 180; longer needs the caller's consent
    records_purge_interval_s: float = Field(86400.0, gt=0)  # the server purges expired recordings this often
    crm_url: str | None = None  # None: the built-in contacts table; else GET {crm_url}/contacts?phone=...
    crm_timeout: float = Field(2.0, gt=0)
    # Tickets on call end: always in the tickets table; "webhook": also ticket.created / ticket.updated to the
    # webhooks subscribed to them; "crm": also POSTed (signed with crm_secret, retried) to {crm_url}/tickets.
    ticket_delivery: Literal["table", "webhook", "crm"] = "table"
    crm_secret: str | None = None  # HMAC key of the X-Callpilot-Signature on ticket POSTs to the CRM
    # Operations (callpilot.ops): webhooks, KPIs, alerts, dashboard
    webhooks: list[WebhookTarget] = Field(default_factory=list)  # [{url, secret, events}]
    webhook_max_attempts: int = Field(6, ge=1)
    service_level_s: float = Field(20.0, gt=0)  # "answered within T seconds" for the service level
    alert_rules: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_ALERT_RULES))
    alert_interval_s: float = Field(60.0, gt=0)  # how often the rules are evaluated

    @field_validator("languages", mode="before")
    @classmethod
    def _languages_list(cls, value: Any) -> Any:
        """CALLPILOT_LANGUAGES=zh,en"""
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("languages")
    @classmethod
    def _languages_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"a language is listed twice: {value}")
        return value

    @model_validator(mode="after")
    def _asr_is_complete(self) -> Settings:
        if self.asr_engine == "vosk" and self.asr_vosk_model_dir is None:
            raise ValueError("asr_engine vosk needs asr_vosk_model_dir (CALLPILOT_ASR_VOSK_MODEL_DIR): "
                             "a downloaded vosk model folder")
        if self.asr_engine in ENGLISH_ONLY_ASR and self.asr_language not in (None, "en"):
            raise ValueError(f"asr_engine {self.asr_engine} recognises English only, not asr_language "
                             f"{self.asr_language!r} (whisper-base recognises other languages)")
        if self.asr_engine in ENGLISH_ONLY_ASR and self.languages[0] != "en":
            raise ValueError(f"a line whose first language is {self.languages[0]!r} needs a recogniser that hears it: "
                             f"asr_engine whisper-base, not {self.asr_engine} (English only)")
        return self

    @model_validator(mode="after")
    def _lines_are_numbers_in_our_languages(self) -> Settings:
        keys = [line_key(number) for number in self.lines]
        if any(not key for key in keys) or len(set(keys)) != len(keys):
            raise ValueError(f"lines: each key must be a distinct phone number, got {list(self.lines)}")
        for number, line in self.lines.items():
            if line.language is not None and line.language not in self.languages:
                raise ValueError(f"line {number}: language {line.language!r} is not one of languages {self.languages}")
            if line.language not in (None, "en") and self.asr_engine in ENGLISH_ONLY_ASR:
                raise ValueError(f"line {number} speaks {line.language!r}: asr_engine whisper-base hears it, not "
                                 f"{self.asr_engine} (English only)")
        return self

    def line(self, called: str) -> tuple[str, LineSettings] | None:
        """The line of a dialled number (any spelling: +86 400..., sip:4008001234@host), or None."""
        return next(((n, line) for n, line in self.lines.items() if same_number(line_key(n), line_key(called))), None)

    @model_validator(mode="after")
    def _workers_share_redis(self) -> Settings:
        if self.workers > 1 and not self.redis_url:
            raise ValueError("workers > 1 share queues, agents and sessions through Redis: set redis_url "
                             "(CALLPILOT_REDIS_URL), e.g. redis://127.0.0.1:6379/0")
        if self.workers > 1 and self.port == 0:
            raise ValueError("workers > 1 share one port: give a port other than 0")
        return self

    @model_validator(mode="after")
    def _crm_tickets_need_a_crm(self) -> Settings:
        if self.ticket_delivery == "crm" and not self.crm_url:
            raise ValueError("ticket_delivery 'crm' posts to {crm_url}/tickets: set crm_url too")
        return self

    @field_validator("recording_retention_days")
    @classmethod
    def _retention_policy(cls, days: int) -> int:
        if days not in (30, 90, 180):
            raise ValueError("use a retention policy of 30, 90 or 180 days (longer only per call, with consent)")
        return days

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Merge the sources in order of precedence; raise SettingsError with a clear message."""
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(_read_config(config_file))
        values.update(_from_env(environ if environ is not None else {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise SettingsError(f"invalid settings: {problems}") from None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping of setting: value")
    return {str(k).replace("-", "_"): v for k, v in raw.items()}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """`CALLPILOT_PORT=9000` -> {"port": "9000"}; JSON-ish values for dicts."""
    fields = Settings.model_fields
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in fields:
            continue  # other tools share the prefix (CALLPILOT_REDIS_URL arrives later)
        if value == "" and fields[name].default is None:
            out[name] = None
        elif fields[name].annotation is not None and str(fields[name].annotation).startswith(("dict", "list")):
            out[name] = yaml.safe_load(value)
        elif _is_model(fields[name].annotation):
            out[name] = yaml.safe_load(value)  # CALLPILOT_HANDOFF='{queues: {...}}'
        else:
            out[name] = value
    return out


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)

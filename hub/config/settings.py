"""Settings: environment variables prefixed SERVICEHUB_, then an optional TOML file, then defaults.

The TOML file is named by SERVICEHUB_CONFIG (default: ./servicehub.toml when it exists). Environment
variables win over the file so that one deployment file can be reused with per-host overrides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from adapters.config import BackendSettings


def _config_file() -> Path | None:
    named = os.environ.get("SERVICEHUB_CONFIG")
    if named:
        return Path(named)
    default = Path("servicehub.toml")
    return default if default.exists() else None


class SmtpReceiverSettings(BaseModel):
    """aiosmtpd server for mail a mail server or the MX forwards to the hub."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2525
    lmtp: bool = False


class ImapAccountSettings(BaseModel):
    name: str
    host: str
    port: int = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    password: str
    mailbox: str = "INBOX"
    poll_seconds: float = 60.0
    idle: bool = True


class SmtpSenderSettings(BaseModel):
    """Where replies are sent. host empty: email replies go to the log channel."""

    host: str = ""
    port: int = 587
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0


class EmailSettings(BaseModel):
    # The support addresses: the receiver accepts mail only for these, replies come from the first,
    # and mail from them is never answered (loops).
    addresses: list[str] = Field(default_factory=list)
    from_name: str = "Customer Service"
    # The authserv-id of the mail server that receives the hub's mail (the first word of the
    # Authentication-Results header it adds, e.g. "mx.shop.example"): its DKIM/DMARC pass aligned
    # with From verifies the sender's address (automatic order answers on the sender's channel).
    # Set it only when that server strips Authentication-Results headers claiming its id from
    # incoming mail (RFC 8601 section 5). None: no header is trusted.
    trusted_authserv_id: str | None = None
    max_message_bytes: int = 25 * 1_048_576
    receiver: SmtpReceiverSettings = Field(default_factory=SmtpReceiverSettings)
    imap: list[ImapAccountSettings] = Field(default_factory=list)
    smtp: SmtpSenderSettings = Field(default_factory=SmtpSenderSettings)

    @property
    def configured(self) -> bool:
        return bool(self.addresses) and (self.receiver.enabled or bool(self.imap) or bool(self.smtp.host))


class TelegramBotSettings(BaseModel):
    name: str = "default"
    token: str
    webhook_secret: str | None = None
    mode: Literal["webhook", "polling"] = "webhook"
    api_url: str = "https://api.telegram.org"


class FormField(BaseModel):
    name: str
    label: str
    type: Literal["email", "phone", "order_number", "text", "textarea", "file"] = "text"
    required: bool = False


class FormSettings(BaseModel):
    """A public web form served at /forms/{slug}."""

    slug: str
    title: str
    intro: str = ""
    fields: list[FormField]
    # The language the title and labels are written in (a tag such as "en" or "zh-CN"). A form in
    # Chinese shows its pages and mails in Chinese; an English one follows the visitor's browser.
    lang: str = Field(default="en", max_length=35)


def _default_forms() -> list[FormSettings]:
    return [
        FormSettings(
            slug="contact",
            title="Contact us",
            intro="Tell us how we can help. We answer by email.",
            fields=[
                FormField(name="name", label="Your name", type="text", required=True),
                FormField(name="email", label="Email", type="email", required=True),
                FormField(name="phone", label="Phone (optional)", type="phone"),
                FormField(name="order", label="Order number (optional)", type="order_number"),
                FormField(name="subject", label="Subject", type="text", required=True),
                FormField(name="message", label="Message", type="textarea", required=True),
                FormField(name="attachment", label="Attachment (optional)", type="file"),
            ],
        )
    ]


class KnowledgeSettings(BaseModel):
    """The knowledge base: model, index and suggestion thresholds (SERVICEHUB_KB__...)."""

    # A sentence-transformers model folder; empty: the packaged all-MiniLM-L6-v2.
    model_path: Path | None = None
    # Load the model at start in a background thread (the hub answers meanwhile).
    warm_up: bool = True
    # The persisted index; empty: data_dir/kb-index.
    index_dir: Path | None = None
    # Passage size in characters: long articles are cut along their headings into passages of at
    # most this much. A change applies to articles written afterwards; `servicehub kb reindex`
    # re-cuts them all.
    passage_chars: int = Field(default=1200, ge=200, le=20000)
    # At most this many suggestions per conversation (GET .../suggestions?k= overrides it).
    suggestions: int = Field(default=3, ge=1, le=20)
    # The confidence (0..1) the best passage needs before anything is suggested; empty: the
    # index's calibrated threshold.
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # The customer's latest messages (since the last reply) that make the question.
    question_turns: int = Field(default=3, ge=1, le=20)
    # How often a hub process looks for changes made elsewhere (other processes, `kb import`).
    sync_seconds: float = Field(default=30.0, gt=0)


class ScmSettings(BaseModel):
    """The SCM/ERP back end and what the hub does with order and stock questions (SERVICEHUB_SCM__...)."""

    # Routing of inbound messages (intent, back-end facts, automatic answers, drafts). Off: messages
    # stay unrouted and are routed once it is switched on (automatic answers only while fresh).
    enabled: bool = True
    backend: BackendSettings = Field(default_factory=BackendSettings)

    # Order references as the company writes them (regular expressions for the intent detector);
    # None: the detector's own (SO-4711, #4711).
    order_patterns: list[str] | None = None

    # Automatic answers: a global switch, the channels that may get them, the confidence the
    # detected intent needs, and how old a question may be (a question routed late, after the back
    # end was down for hours, gets a draft for the agent instead of a stale automatic answer).
    # Voice never: a call transcript cannot be answered on the call; it gets a draft, and the
    # agent's reply goes by email (or the agent calls back).
    auto_answer: bool = True
    auto_answer_channels: list[str] = Field(default_factory=lambda: ["email", "telegram", "webform"])
    auto_answer_min_confidence: float = Field(default=0.85, ge=0.0, le=1.0)
    auto_answer_max_age_seconds: float = Field(default=3600.0, gt=0)

    # The routing worker: batch size, poll interval, retries while the back end is down.
    routing_batch_size: int = Field(default=50, ge=1, le=1000)
    routing_poll_seconds: float = Field(default=2.0, gt=0)
    routing_retry_base_seconds: float = Field(default=30.0, gt=0)
    routing_retry_max_seconds: float = Field(default=1800.0, gt=0)
    routing_max_attempts: int = Field(default=48, ge=1)
    routing_lease_seconds: float = Field(default=120.0, gt=0)
    # During a burst (more than routing_busy_above_per_second messages arriving), routing takes at
    # most routing_busy_share of the time, so ingest does not slow down; it catches up at full
    # speed when the burst is over. Below that rate every message is routed at once.
    routing_busy_share: float = Field(default=0.05, gt=0, le=1.0)
    routing_busy_above_per_second: float = Field(default=50.0, ge=0)
    catalogue_refresh_seconds: float = Field(default=900.0, gt=0)

    # Escalation to the back office. target "auto": the webhook when a URL is set, else email when
    # an address is set, else the back end's own escalate().
    escalation_target: Literal["auto", "webhook", "email", "backend"] = "auto"
    backoffice_url: str | None = None
    backoffice_secret: SecretStr | None = None
    backoffice_timeout_seconds: float = Field(default=10.0, gt=0)
    escalation_email: str | None = None
    # The rule: a late order asked about by a key customer (segment "key") is escalated at once.
    escalate_late_orders_of_key_customers: bool = True

    # Demand: complete days are pushed to the back end's record_demand() on this schedule.
    demand_push: bool = True
    demand_push_interval_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("auto_answer_channels")
    @classmethod
    def _never_voice(cls, value: list[str]) -> list[str]:
        if "voice" in value:
            raise ValueError("voice cannot get automatic answers (a call cannot be answered after it ended); remove it")
        return value

    @field_validator("order_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str] | None) -> list[str] | None:
        import re

        for pattern in value or ():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"order pattern {pattern!r} is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _target_configured(self):
        if self.escalation_target == "webhook" and not self.backoffice_url:
            raise ValueError("escalation_target 'webhook' needs backoffice_url")
        if self.escalation_target == "email" and not self.escalation_email:
            raise ValueError("escalation_target 'email' needs escalation_email")
        if self.backoffice_url and not self.backoffice_secret:
            raise ValueError("backoffice_url needs backoffice_secret (the webhook is signed with it)")
        return self

    @property
    def effective_escalation_target(self) -> str:
        if self.escalation_target != "auto":
            return self.escalation_target
        if self.backoffice_url:
            return "webhook"
        return "email" if self.escalation_email else "backend"


class SlaSettings(BaseModel):
    """Service levels and assignment (SERVICEHUB_SLA__...)."""

    class Calendar(BaseModel):
        """Business hours: wall-clock intervals per weekday in a time zone, and holidays (dates,
        and/or a country code for the `holidays` package, e.g. "DE" or "US-NY")."""

        timezone: str = "UTC"
        hours: dict[str, list[str]] = Field(default_factory=lambda: {
            day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")
        })
        holidays: list[str] = Field(default_factory=list)  # ISO dates
        holiday_country: str | None = None

    class Policy(BaseModel):
        """Targets in business minutes. priority / segment None match any; of the policies that
        match a conversation the strictest (shortest resolution target) applies."""

        name: str
        priority: str | None = None
        segment: str | None = None
        first_response_minutes: int = Field(ge=1)
        resolution_minutes: int = Field(ge=1)
        calendar: str = "default"

    enabled: bool = True
    calendars: dict[str, Calendar] = Field(default_factory=lambda: {"default": SlaSettings.Calendar()})
    policies: list[Policy] = Field(default_factory=lambda: [
        SlaSettings.Policy(name="key customer", segment="key", first_response_minutes=60, resolution_minutes=8 * 60),
        SlaSettings.Policy(name="urgent", priority="urgent", first_response_minutes=60, resolution_minutes=4 * 60),
        SlaSettings.Policy(name="high", priority="high", first_response_minutes=2 * 60, resolution_minutes=16 * 60),
        SlaSettings.Policy(name="normal", priority="normal", first_response_minutes=4 * 60, resolution_minutes=24 * 60),
        SlaSettings.Policy(name="low", priority="low", first_response_minutes=8 * 60, resolution_minutes=40 * 60),
    ])
    # Warn when this share of a target's business time has passed.
    warning_ratio: float = Field(default=0.8, gt=0, lt=1)
    # On a breach (besides a system message in the conversation, live in the inbox):
    escalate_on_breach: bool = False  # hand the conversation to the back office (hub/scm/escalation.py)
    reassign_on_breach: bool = False  # to the least-loaded available agent of its team
    # Automatic assignment of new open conversations among available agents.
    assignment: Literal["off", "round_robin", "load"] = "load"
    key_customer_team: str | None = None  # key customers go to this team's agents
    worker: bool = True  # run the SLA/assignment worker in this process
    poll_seconds: float = Field(default=5.0, gt=0)
    batch_size: int = Field(default=200, ge=1)


class SegmentSettings(BaseModel):
    """Customer value and segments (SERVICEHUB_SEGMENTS__...): hub/segments/value.py.

    A customer is "key" when their order value or order count over the window reaches the key
    thresholds, "potential" when it reaches the potential ones or they contacted us often, else
    "general". A segment an admin set by hand is kept (customer.segment_locked)."""

    enabled: bool = True
    window_days: int = Field(default=365, ge=1, le=3650)
    key_value: float = Field(default=2000.0, ge=0)
    key_orders: int = Field(default=12, ge=1)
    potential_value: float = Field(default=300.0, ge=0)
    potential_orders: int = Field(default=3, ge=1)
    potential_contacts: int = Field(default=5, ge=1)     # conversations opened in the window
    # Values are summed in this currency. An order in another one counts at the rate given here
    # (units of `currency` per unit of the order's currency, e.g. {"EUR": 0.86}); without a rate
    # it counts towards the order count only. An order without a currency is taken as `currency`.
    currency: str = "GBP"
    exchange_rates: dict[str, float] = Field(default_factory=dict)
    # Orders in these states are not value (quotations, cancelled, returned).
    excluded_states: list[str] = Field(default_factory=lambda: ["pending", "cancelled", "returned"])
    # The background worker: every interval it recomputes the customers whose figures are older
    # than stale_hours, batch_size at a time; a back end that is down is retried next interval.
    interval_seconds: float = Field(default=600.0, ge=5)
    stale_hours: float = Field(default=24.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=10000)


class CsatSettings(BaseModel):
    """Satisfaction surveys (SERVICEHUB_CSAT__...)."""

    enabled: bool = True
    # Conversations of these channels get a survey when resolved (web form and voice ones by
    # email, when the customer has an email address).
    channels: list[str] = ["email", "telegram", "webform", "voice"]
    # A survey link (and its Telegram buttons) can be answered, and an answer changed, this long.
    valid_days: int = Field(default=14, ge=1, le=365)
    # Answers (page posts) per minute per client address on the public survey page.
    rate_per_minute: int = Field(default=20, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEHUB_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str = ""  # empty: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    # Public base URL used in links the hub sends out (password resets, deep links).
    public_url: str = "http://127.0.0.1:8080"

    # Bad input: bodies over this are refused with 413 before they are parsed.
    max_request_bytes: int = 1_048_576
    max_attachment_bytes: int = 25 * 1_048_576

    # Threading: a message to a resolved conversation reopens it within this window.
    reopen_window_days: float = 7.0
    # Continuity: a customer's message that no thread claims (another channel, say) joins their one
    # conversation active within this many hours when nothing in it points elsewhere; 0 turns it off.
    continuity_window_hours: float = Field(default=24.0, ge=0)

    # Message search on SQLite (hub/conversations/search/message_index.py): the background indexer of message words
    # runs in this process (turn it off in all but one of several processes, if you like; two
    # never index a message twice), taking at most this share of the time during an ingest burst.
    message_indexer: bool = True
    message_indexer_busy_share: float = Field(default=0.2, gt=0, le=1.0)
    # Snooze: how often the worker looks for snoozed conversations whose time has come.
    snooze_poll_seconds: float = Field(default=15.0, gt=0)

    # Outbox delivery.
    outbox_inline_worker: bool = True
    outbox_poll_seconds: float = 0.5
    outbox_batch_size: int = 20
    outbox_max_attempts: int = 8
    outbox_backoff_base_seconds: float = 2.0
    outbox_backoff_max_seconds: float = 3600.0
    outbox_lease_seconds: float = 120.0

    # Inbound spool (hub/ingest/spool.py): what the channels received, processed per channel with this
    # many items at once; an item whose own work (parsing, downloading its files) takes longer
    # than the budget is stopped and kept as rejected (an admin can retry it with a larger one).
    spool_concurrency: int = Field(default=32, ge=1, le=1000)
    spool_item_budget_seconds: float = Field(default=60.0, gt=0)
    # Worker processes for the channels' parsers (hub/runtime/parser_pool.py), of which one channel may
    # hold all but one; None: one more than the cores, 3 to 4; 0: parse in threads (an item over
    # its budget is then rejected, but its parse cannot be stopped and runs on to the end).
    parser_processes: int | None = Field(default=None, ge=0, le=64)

    # Auth.
    session_days: float = 14.0
    # A session unused this long ends (the agent signs in again), however long session_days allows.
    session_idle_hours: float = Field(default=12.0, gt=0)
    cookie_secure: bool = False  # set true behind HTTPS
    login_rate_per_minute: int = 10
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; from any
    # other peer the header is ignored. Empty: the peer is the client (the hub faces the clients).
    trusted_proxies: list[str] = Field(default_factory=list)
    # When set, GET /metrics needs "Authorization: Bearer <this>" (Prometheus: bearer_token).
    metrics_token: SecretStr | None = None

    # Email (SERVICEHUB_EMAIL__ADDRESSES='["help@shop.example"]', SERVICEHUB_EMAIL__SMTP__HOST=...).
    email: EmailSettings = Field(default_factory=EmailSettings)

    # Telegram: one bot from these variables; more bots as [[telegram_bots]] in the TOML file.
    telegram_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_mode: Literal["webhook", "polling"] = "webhook"
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bots: list[TelegramBotSettings] = Field(default_factory=list)

    # Phone calls: a folder watched for transcript files (none: only POST /api/v1/calls).
    voice_drop_dir: Path | None = None

    # Web forms ([[forms]] in the TOML file replaces the default contact form).
    forms: list[FormSettings] = Field(default_factory=_default_forms)
    form_rate_per_minute: int = 5
    form_min_fill_seconds: float = 3.0
    form_max_upload_bytes: int = 10 * 1_048_576
    form_upload_types: list[str] = Field(
        default_factory=lambda: ["image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"]
    )

    # Knowledge base and answer suggestions.
    kb: KnowledgeSettings = Field(default_factory=KnowledgeSettings)

    # SCM/ERP back end, automatic answers, escalation, demand.
    scm: ScmSettings = Field(default_factory=ScmSettings)

    # Service levels, assignment, customer segments, satisfaction surveys.
    sla: SlaSettings = Field(default_factory=SlaSettings)
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    csat: CsatSettings = Field(default_factory=CsatSettings)

    # Channels whose outbound the log channel records (until a real adapter exists).
    log_channels: list[str] = Field(default_factory=lambda: ["email", "telegram", "voice", "webform", "api", "log"])

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from hub.web.ratelimit import parse_networks

        parse_networks(value)  # raises with the entry that is not a network
        return value

    @field_validator("metrics_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # an empty variable means "no token", not "the empty token"
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'servicehub.db'}"

    @property
    def all_telegram_bots(self) -> list[TelegramBotSettings]:
        bots = list(self.telegram_bots)
        if self.telegram_token:
            bots.insert(
                0,
                TelegramBotSettings(
                    name="default",
                    token=self.telegram_token,
                    webhook_secret=self.telegram_webhook_secret,
                    mode=self.telegram_mode,
                    api_url=self.telegram_api_url,
                ),
            )
        return bots

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def outbound_log(self) -> Path:
        """Where the log channel records what it would have sent (channels/log.py)."""
        return self.data_dir / "outbound.jsonl"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides) -> Settings:
    """Settings from the environment and the TOML file; keyword overrides win (tests use them)."""
    return Settings(**overrides)

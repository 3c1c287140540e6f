"""Settings: environment variables prefixed SERVICEHUB_, then an optional TOML file, then defaults.

The TOML file is named by SERVICEHUB_CONFIG (default: ./servicehub.toml when it exists). Environment
variables win over the file so that one deployment file can be reused with per-host overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


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


class ScmSettings(BaseModel):
    """The SCM/ERP back end and what the hub does with order and stock questions (SERVICEHUB_SCM__...)."""

    enabled: bool = True


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

    # Outbox delivery.
    outbox_inline_worker: bool = True
    outbox_poll_seconds: float = 0.5
    outbox_batch_size: int = 20
    outbox_max_attempts: int = 8
    outbox_backoff_base_seconds: float = 2.0
    outbox_backoff_max_seconds: float = 3600.0
    outbox_lease_seconds: float = 120.0

    # Auth.
    session_days: float = 14.0
    cookie_secure: bool = False  # set true behind HTTPS
    login_rate_per_minute: int = 10

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

    # Channels whose outbound the log channel records (until a real adapter exists).
    log_channels: list[str] = Field(default_factory=lambda: ["email", "telegram", "voice", "webform", "api", "log"])

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

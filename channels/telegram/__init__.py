"""The Telegram channel (python-telegram-bot 22 inside the hub's event loop).

from_settings(settings) builds it from settings.all_telegram_bots, or returns None when no bot is
configured. Webhook routes: POST /channels/telegram/webhook for the bot named "default" (the one
SERVICEHUB_TELEGRAM_TOKEN configures), POST /channels/telegram/{bot}/webhook for the others.
"""

from __future__ import annotations

from channels.telegram.channel import (  # noqa: F401
    DEFAULT_BOT,
    SECRET_HEADER,
    WEBHOOK_PATH,
    BotConfig,
    TelegramChannel,
    TelegramConfigError,
    webhook_path,
)
from channels.telegram.parse import parse_update  # noqa: F401


def from_settings(settings) -> TelegramChannel | None:
    """The channel for the configured bots; raises TelegramConfigError for settings that cannot work
    (a webhook bot without a secret, two bots with one name)."""
    bots = [
        BotConfig(name=b.name, token=b.token, mode=b.mode, webhook_secret=b.webhook_secret, api_url=b.api_url)
        for b in settings.all_telegram_bots
    ]
    if not bots:
        return None
    return TelegramChannel(
        bots,
        public_url=settings.public_url,
        max_attachment_bytes=settings.max_attachment_bytes,
        max_update_bytes=settings.max_request_bytes,
    )

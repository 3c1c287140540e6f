"""Sending one outbox message to a Telegram chat: text split to Telegram's limit, then documents.

Telegram counts a message's length in UTF-16 code units (an emoji outside the BMP counts twice) and
refuses texts over 4,096 of them, so long replies go out as several messages, cut at a paragraph,
a line or a space where there is one. Python strings hold code points, so a cut can never fall
inside a surrogate pair; it also steps back over combining marks and joiners so that no accent or
emoji sequence is torn apart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import InputFile, ReplyParameters

from channels.base import PermanentFailure
from channels.telegram.bot import ChatMigrated, HubBot, TelegramError, delivery_failure
from hub.contract.messages import OutboundMessage

MAX_TEXT_UNITS = 4096
_SEPARATORS = ("\n\n", "\n", " ")
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_fitting(text: str, limit: int) -> int:
    """How many code points of text fit in limit UTF-16 code units."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _hard_cut(text: str, cut: int) -> int:
    """Move a cut with no whitespace to choose from off combining marks, joiners and the like."""
    at = cut
    while at > 1 and (
        unicodedata.combining(text[at]) or text[at] in _JOINERS or text[at - 1] in _JOINERS
        or 0x1F3FB <= ord(text[at]) <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= ord(text[at]) <= 0xE007F  # tag sequences (subdivision flags)
    ):
        at -= 1
    return at if at > 1 else cut


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """Parts of at most limit UTF-16 code units each, cut at the best boundary available; no part
    is empty or only whitespace (Telegram refuses those)."""
    rest = text.strip()
    parts: list[str] = []
    while utf16_len(rest) > limit:
        fit = _prefix_fitting(rest, limit)
        window = rest[:fit]
        cut = 0
        for sep in _SEPARATORS:
            at = window.rfind(sep)
            # A separator in the first quarter would leave a stub: look for a weaker one instead.
            if at > fit // 4:
                cut = at
                break
        if cut == 0:
            cut = _hard_cut(rest, fit)
        part = rest[:cut].rstrip()
        if not part:
            part, cut = rest[:fit], fit
        parts.append(part)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


@dataclass(frozen=True)
class Route:
    bot: str
    chat_id: int


SaveProgress = Callable[[dict], Awaitable[None]]


async def deliver(
    bot: HubBot,
    route: Route,
    message: OutboundMessage,
    *,
    quote: int | None,
    progress: dict,
    save_progress: SaveProgress,
) -> tuple[int, int]:
    """Send the message's text parts, then its attachments as documents. Returns (chat_id, the
    Telegram message id of the last part).

    progress maps step numbers already sent to their message ids: a retry after a failure part-way
    (flood control on part 3 of 4) sends only what is missing. save_progress keeps it after each
    step. Raises TemporaryFailure or PermanentFailure.
    """
    steps: list[tuple[str, object]] = [("text", part) for part in split_text(message.text or "")]
    for att in message.attachments:
        if att.data is None:
            raise PermanentFailure(
                f"attachment {att.filename!r} has no bytes to upload (only a blob reference reached the channel)"
            )
        steps.append(("document", att))
    if not steps:
        raise PermanentFailure("the message has neither text nor attachments")

    chat_id = progress.get("chat_id", route.chat_id)
    sent: dict[str, int] = dict(progress.get("sent", {}))
    last_id = None
    for number, (kind, item) in enumerate(steps):
        key = str(number)
        if key in sent:
            last_id = sent[key]
            continue
        reply = (
            ReplyParameters(message_id=quote, allow_sending_without_reply=True)
            if quote is not None and not sent and chat_id == route.chat_id
            else None
        )
        for attempt in range(2):
            try:
                if kind == "text":
                    result = await bot.send_message(chat_id=chat_id, text=item, reply_parameters=reply)
                else:
                    att = item
                    result = await bot.send_document(
                        chat_id=chat_id,
                        document=InputFile(att.data, filename=att.filename or "attachment"),
                        reply_parameters=reply,
                    )
                break
            except ChatMigrated as exc:
                # A group became a supergroup: its new id takes the message (once).
                if attempt:
                    raise delivery_failure(exc, "sendMessage") from exc
                chat_id = exc.new_chat_id
                reply = None
            except TelegramError as exc:
                raise delivery_failure(exc, "sendMessage" if kind == "text" else "sendDocument") from exc
        last_id = result.message_id
        sent[key] = last_id
        if len(steps) > 1:
            await save_progress({"chat_id": chat_id, "sent": sent, "steps": len(steps)})
    assert last_id is not None
    return chat_id, last_id

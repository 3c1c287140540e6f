"""Bot API updates -> InboundMessage, as plain dicts (the JSON Telegram sent), with no I/O.

Working on the raw JSON rather than python-telegram-bot's objects is deliberate: PTB's de_json
insists on every field the current Bot API marks required, so one update of an older or newer shape
would fail the whole batch; the JSON itself is what the webhook and the spool hold anyway.

Naming, so that several bots never mix (the bot's name prefixes everything):
thread_key "bot:chat_id"; a message's external_id "bot:chat_id:message_id" (an edit keeps it, with
kind "edit"); a button press "bot:cb:callback_query_id".

Files are not fetched here: their references go to metadata["files"] and the channel downloads
them (getFile) before handing the message to the hub.

A forged update (the webhook is public) can hold anything JSON can: texts of megabytes, thousands of
entities, NUL characters, lone surrogates. The work stays linear in the update, a text is cut at
MAX_TEXT, and what is stored is valid UTF-8 without NUL (PostgreSQL refuses both).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from hub.contract.errors import RejectedInput
from hub.contract.messages import InboundMessage, Sender, ThreadHints

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 1_000_000  # the hub refuses longer texts; Telegram itself sends at most 4,096 characters
# The update kinds a customer's words arrive in; every other kind is none of the hub's business.
HANDLED_KINDS = ("message", "edited_message", "callback_query")
GROUP_TYPES = ("group", "supergroup")
# Telegram's anonymous group admin and channel stand-ins: posts "from" them are nobody's.
SERVICE_USER_IDS = (777000, 1087968824, 136817688)

# Messages that record something that happened to a chat, not something a customer said.
SERVICE_KEYS = frozenset(
    {
        "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
        "group_chat_created", "supergroup_chat_created", "channel_chat_created",
        "message_auto_delete_timer_changed", "migrate_to_chat_id", "migrate_from_chat_id", "pinned_message",
        "users_shared", "user_shared", "chat_shared", "write_access_allowed", "proximity_alert_triggered",
        "forum_topic_created", "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened",
        "general_forum_topic_hidden", "general_forum_topic_unhidden", "giveaway_created", "giveaway_completed",
        "video_chat_scheduled", "video_chat_started", "video_chat_ended", "video_chat_participants_invited",
        "boost_added", "chat_background_set", "connected_website", "passport_data", "refunded_payment",
        "checklist_tasks_done", "checklist_tasks_added", "direct_message_price_changed",
        "paid_message_price_changed", "gift", "unique_gift",
    }
)

# Currencies without minor units (Telegram's amounts are in the smallest unit of the currency).
_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF", "XTR"})
_START = re.compile(r"^/start(?:@(?P<to>\w+))?\s+(?P<code>[A-Za-z0-9_-]{1,64})\s*$")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@(?P<to>\w+))?(?:\s|$)")
_MAX_START = 256  # "/start" and a code of at most 64 characters; a longer text is no deep link
# Entities of one message looked at to tell whether a group message is addressed to the bot (a real
# message has a handful; a forged one may list a million).
MAX_ENTITIES = 1000


class MalformedUpdate(RejectedInput, ValueError):
    """An update of a handled kind that lacks what every such update has (a chat id, a sender), or
    that cannot be read at all."""

    code = "malformed_update"


@dataclass(frozen=True)
class _Content:
    text: str
    files: list[dict]
    meta: dict


def parse_update(
    data: dict, *, bot: str = "default", bot_username: str | None = None, bot_id: int | None = None
) -> InboundMessage | None:
    """The customer's message in one update, or None when there is none (a channel post, a payment
    query, a chat member change, a group message not addressed to this bot, an unknown kind).

    Never raises: an unreadable update is logged and ignored. The channel itself uses
    parse_update_strict, which raises MalformedUpdate so that such updates are kept as rejected.
    bot_username / bot_id: this bot's, to tell which group messages are addressed to it.
    """
    try:
        return parse_update_strict(data, bot=bot, bot_username=bot_username, bot_id=bot_id)
    except Exception as exc:  # noqa: BLE001 - the contract is "never an exception"
        log.warning("unreadable Telegram update %r: %s", _get(data, "update_id"), exc)
        return None


def parse_update_strict(
    data: dict, *, bot: str = "default", bot_username: str | None = None, bot_id: int | None = None
) -> InboundMessage | None:
    """parse_update, raising MalformedUpdate for a handled update it cannot read."""
    if not isinstance(data, dict):
        raise MalformedUpdate("an update is a JSON object")
    update_id = data.get("update_id")
    try:
        if "message" in data:
            return _from_message(data["message"], update_id, bot, bot_username, bot_id, kind="message")
        if "edited_message" in data:
            return _from_message(data["edited_message"], update_id, bot, bot_username, bot_id, kind="edit")
        if "callback_query" in data:
            return _from_callback(data["callback_query"], update_id, bot)
    except MalformedUpdate:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        # A field of an unexpected type or shape deep inside: the update cannot be read.
        raise MalformedUpdate(f"unreadable update: {type(exc).__name__}: {exc}"[:500]) from None
    return None


def chat_type(data: Any) -> str | None:
    """The type of the chat an update happened in ("private", "group"...), where it has one."""
    if not isinstance(data, dict):
        return None
    for key in HANDLED_KINDS:
        obj = data.get(key)
        if isinstance(obj, dict):
            chat = _get(obj, "chat") or _get(_get(obj, "message"), "chat")
            return _get(chat, "type")
    return None


# --- messages ------------------------------------------------------------------------------------


def _from_message(
    msg: Any, update_id: Any, bot: str, bot_username: str | None, bot_id: int | None, *, kind: str
) -> InboundMessage | None:
    if not isinstance(msg, dict):
        raise MalformedUpdate("the message is not an object")
    chat = msg.get("chat")
    if not isinstance(chat, dict) or not _is_int(chat.get("id")) or not _is_int(msg.get("message_id")):
        raise MalformedUpdate("the message has no chat id or message id")
    user = msg.get("from")
    if not isinstance(user, dict) or not _is_int(user.get("id")):
        return None  # a post on behalf of a chat or channel: no customer wrote it
    if user.get("is_bot") or user["id"] in SERVICE_USER_IDS:
        return None
    if any(key in msg for key in SERVICE_KEYS):
        return None
    chat_id, message_id = chat["id"], msg["message_id"]
    ctype = chat.get("type") or "private"
    if ctype in GROUP_TYPES and not addressed_to_bot(msg, bot_username, bot_id):
        return None
    if ctype == "channel":
        return None

    content = _content(msg)
    text = _safe(content.text)
    link_code = None
    start = _START.match(text) if isinstance(text, str) and len(text) <= _MAX_START else None
    if start and (not start["to"] or _same_name(start["to"], bot_username)):
        link_code, text = start["code"], "/start"

    meta: dict[str, Any] = {"bot": bot, "chat_id": chat_id, "chat_type": ctype, "update_id": update_id, "message_id": message_id}
    if chat.get("title"):
        meta["chat_title"] = chat["title"]
    if user.get("username"):
        meta["username"] = user["username"]
    if user.get("language_code"):
        meta["language_code"] = user["language_code"]
    for key in ("media_group_id", "message_thread_id"):
        if msg.get(key) is not None:
            meta[key] = msg[key]
    meta.update(_forward(msg))
    meta.update(content.meta)
    if content.files:
        meta["files"] = content.files
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        meta["truncated"] = True

    in_reply_to: tuple[str, ...] = ()
    reply = msg.get("reply_to_message")
    if isinstance(reply, dict) and _is_int(reply.get("message_id")):
        in_reply_to = (f"{bot}:{chat_id}:{reply['message_id']}",)
        meta["reply_to_message_id"] = reply["message_id"]

    verified: tuple[Sender, ...] = ()
    contact = msg.get("contact")
    if isinstance(contact, dict) and contact.get("user_id") is not None and contact.get("user_id") == user["id"]:
        phone = own_phone(contact.get("phone_number"))
        if phone:
            verified = (Sender(phone, _full_name(contact) or _full_name(user), kind="phone"),)
        else:
            meta["contact_unverified_reason"] = "not a possible phone number"

    when = msg.get("edit_date") if kind == "edit" and msg.get("edit_date") else msg.get("date")
    return InboundMessage(
        channel=CHANNEL,
        external_id=f"{bot}:{chat_id}:{message_id}",
        sender=Sender(str(user["id"]), _full_name(user), kind="telegram"),
        text=text,
        sent_at=_time(when),
        thread=ThreadHints(in_reply_to=in_reply_to, thread_key=f"{bot}:{chat_id}"),
        metadata=_safe_json(meta),
        kind=kind,
        verified_identities=verified,
        link_code=link_code,
    )


def addressed_to_bot(msg: dict, bot_username: str | None, bot_id: int | None) -> bool:
    """In a group, only what is meant for the bot is the hub's: a command (/cmd or /cmd@thisbot),
    a mention of @thisbot, or a reply to one of the bot's own messages."""
    reply_from = _get(_get(msg, "reply_to_message"), "from")
    if bot_id is not None and _get(reply_from, "id") == bot_id:
        return True
    text = msg.get("text") or msg.get("caption") or ""
    if not isinstance(text, str):
        return False
    entities = msg.get("entities") or msg.get("caption_entities") or []
    encoded: bytes | None = None  # the text in UTF-16, encoded once for all entities
    for ent in entities[:MAX_ENTITIES] if isinstance(entities, list) else []:
        if not isinstance(ent, dict) or ent.get("type") not in ("bot_command", "mention"):
            if isinstance(ent, dict) and ent.get("type") == "text_mention" and bot_id is not None and _get(ent.get("user"), "id") == bot_id:
                return True
            continue
        if encoded is None:
            encoded = text.encode("utf-16-le", "surrogatepass")
        piece = _utf16_piece(encoded, ent.get("offset"), ent.get("length"))
        if ent.get("type") == "bot_command":
            _, at, target = piece.partition("@")
            if not at or _same_name(target, bot_username):
                return True
        elif ent.get("type") == "mention" and bot_username and _same_name(piece.lstrip("@"), bot_username):
            return True
    # No entities (a client or a test that leaves them out): read the text itself.
    if not entities:
        command = _COMMAND.match(text)
        if command and (not command["to"] or _same_name(command["to"], bot_username)):
            return True
        if bot_username and re.search(rf"(?<!\w)@{re.escape(bot_username)}(?!\w)", text, re.I):
            return True
    return False


def _content(msg: dict) -> _Content:
    """What the message says, as text, with its files and what else an agent should see."""
    caption = msg.get("caption") if isinstance(msg.get("caption"), str) else None
    text = msg.get("text") if isinstance(msg.get("text"), str) else None
    files: list[dict] = []
    meta: dict[str, Any] = {}
    label: str | None = None

    photo = msg.get("photo")
    if isinstance(photo, list) and photo:
        largest = max(
            (p for p in photo if isinstance(p, dict)),
            key=lambda p: (p.get("file_size") or 0, (p.get("width") or 0) * (p.get("height") or 0)),
            default=None,
        )
        if largest is not None:
            files.append(_file_ref(largest, "photo", "image/jpeg", "photo", ".jpg"))
        label = "[photo]"
    elif isinstance(msg.get("animation"), dict):  # also sent as "document" for old clients
        files.append(_file_ref(msg["animation"], "animation", "video/mp4", "animation", ".mp4"))
        label = "[animation]"
    elif isinstance(msg.get("document"), dict):
        doc = msg["document"]
        files.append(_file_ref(doc, "document", "application/octet-stream", "document", ""))
        label = f"[document {doc.get('file_name') or ''}]".replace(" ]", "]")
    elif isinstance(msg.get("voice"), dict):
        voice = msg["voice"]
        files.append(_file_ref(voice, "voice", "audio/ogg", "voice", ".ogg"))
        label = f"[voice message {voice.get('duration', '?')}s]"
    elif isinstance(msg.get("video_note"), dict):
        note = msg["video_note"]
        files.append(_file_ref(note, "video_note", "video/mp4", "video_note", ".mp4"))
        label = f"[video message {note.get('duration', '?')}s]"
    elif isinstance(msg.get("audio"), dict):
        audio = msg["audio"]
        files.append(_file_ref(audio, "audio", "audio/mpeg", "audio", ".mp3"))
        title = " – ".join(str(x) for x in (audio.get("performer"), audio.get("title")) if x) or audio.get("file_name") or ""
        label = f"[audio {title}]".replace(" ]", "]")
    elif isinstance(msg.get("video"), dict):
        files.append(_file_ref(msg["video"], "video", "video/mp4", "video", ".mp4"))
        label = "[video]"
    elif isinstance(msg.get("sticker"), dict):
        sticker = msg["sticker"]
        label = f"[sticker {sticker.get('emoji') or ''}]".replace(" ]", "]")
        meta["sticker"] = {k: sticker[k] for k in ("emoji", "set_name", "file_unique_id") if k in sticker}
    elif isinstance(msg.get("venue"), dict):
        venue = msg["venue"]
        loc = venue.get("location") or msg.get("location") or {}
        where = ", ".join(str(x) for x in (venue.get("title"), venue.get("address")) if x)
        label = f"[venue {where} {_coords(loc)}]".replace("  ", " ").replace(" ]", "]")
        meta["venue"] = {k: venue[k] for k in ("title", "address", "foursquare_id", "google_place_id") if k in venue}
        meta["location"] = _location(loc)
    elif isinstance(msg.get("location"), dict):
        label = f"[location {_coords(msg['location'])}]"
        meta["location"] = _location(msg["location"])
    elif isinstance(msg.get("contact"), dict):
        contact = msg["contact"]
        who = " ".join(x for x in (_full_name(contact), contact.get("phone_number")) if x)
        label = f"[contact {who}]".replace(" ]", "]")
        meta["contact"] = {
            k: contact[k] for k in ("phone_number", "first_name", "last_name", "user_id") if contact.get(k) is not None
        }
    elif isinstance(msg.get("dice"), dict):
        dice = msg["dice"]
        label = f"[dice {dice.get('emoji') or '🎲'} {dice.get('value', '?')}]"
    elif isinstance(msg.get("poll"), dict):
        label = f"[poll {msg['poll'].get('question') or ''}]".replace(" ]", "]")
    elif isinstance(msg.get("game"), dict):
        label = f"[game {msg['game'].get('title') or ''}]".replace(" ]", "]")
    elif isinstance(msg.get("invoice"), dict):
        invoice = msg["invoice"]
        label = f"[invoice {invoice.get('title') or ''}]".replace(" ]", "]")
        meta["invoice"] = {k: invoice[k] for k in ("title", "currency", "total_amount") if k in invoice}
    elif isinstance(msg.get("successful_payment"), dict):
        pay = msg["successful_payment"]
        label = f"[payment {_amount(pay.get('total_amount'), pay.get('currency'))} {pay.get('currency') or ''}]".replace(" ]", "]")
        meta["payment"] = {
            k: pay[k] for k in ("currency", "total_amount", "invoice_payload", "telegram_payment_charge_id") if k in pay
        }
    elif isinstance(msg.get("web_app_data"), dict):
        web_app = msg["web_app_data"]
        label = f"[web app {web_app.get('button_text') or ''}] {web_app.get('data') or ''}".strip()
    elif isinstance(msg.get("story"), dict):
        label = "[story]"
    elif msg.get("paid_media") is not None:
        label = "[paid media]"
    elif msg.get("checklist") is not None:
        label = f"[checklist {_get(msg['checklist'], 'title') or ''}]".replace(" ]", "]")

    if text is not None:
        return _Content(text, files, meta)
    if caption:
        return _Content(caption, files, meta)
    if label is not None:
        return _Content(label, files, meta)
    # A kind of message this hub does not know yet, from a customer: keep that it happened.
    keys = itertools.islice((k for k in msg if k not in ("message_id", "from", "chat", "date")), 1000)
    meta["content_keys"] = sorted(keys)[:30]
    return _Content("[a message of a kind this hub cannot show]", files, meta)


def _file_ref(obj: dict, kind: str, default_type: str, stem: str, suffix: str) -> dict:
    unique = obj.get("file_unique_id")
    name = obj.get("file_name") or f"{stem}_{unique or 'file'}{suffix}"
    ref = {
        "kind": kind,
        "file_id": obj.get("file_id"),
        "file_unique_id": unique,
        "file_name": str(name)[:255],
        "mime_type": obj.get("mime_type") or default_type,
        "file_size": obj.get("file_size") if _is_int(obj.get("file_size")) else None,
    }
    return ref


def _forward(msg: dict) -> dict:
    """Where a forwarded message came from (Bot API 7 forward_origin, and the older fields)."""
    out: dict[str, Any] = {}
    origin = msg.get("forward_origin")
    if isinstance(origin, dict):
        out["forward_origin"] = origin
    if isinstance(msg.get("forward_from"), dict):
        user = msg["forward_from"]
        out["forward_from"] = {"id": user.get("id"), "name": _full_name(user), "username": user.get("username")}
    if isinstance(msg.get("forward_from_chat"), dict):
        chat = msg["forward_from_chat"]
        out["forward_from_chat"] = {
            "id": chat.get("id"), "type": chat.get("type"),
            "title": chat.get("title") or _full_name(chat), "username": chat.get("username"),
        }
    for key in ("forward_from_message_id", "forward_sender_name", "forward_signature", "forward_date"):
        if msg.get(key) is not None:
            out[key] = msg[key]
    if out:
        out["forwarded"] = True
    return out


# --- button presses ------------------------------------------------------------------------------


def _from_callback(query: Any, update_id: Any, bot: str) -> InboundMessage | None:
    if not isinstance(query, dict) or not query.get("id") or not isinstance(query["id"], (str, int)):
        raise MalformedUpdate("the callback query has no id")
    user = query.get("from")
    if not isinstance(user, dict) or not _is_int(user.get("id")):
        raise MalformedUpdate("the callback query has no sender")
    if user.get("is_bot"):
        return None
    message = query.get("message") if isinstance(query.get("message"), dict) else {}
    chat_id = _get(message.get("chat"), "id")
    meta: dict[str, Any] = {"bot": bot, "update_id": update_id, "callback_query_id": query["id"]}
    thread_key = None
    in_reply_to: tuple[str, ...] = ()
    if _is_int(chat_id):
        thread_key = f"{bot}:{chat_id}"
        meta["chat_id"] = chat_id
        meta["chat_type"] = _get(message.get("chat"), "type")
        if _is_int(message.get("message_id")):
            # The message carrying the button: usually one the hub sent, stored under this id.
            in_reply_to = (f"{bot}:{chat_id}:{message['message_id']}",)
            meta["message_id"] = message["message_id"]
    if query.get("inline_message_id"):
        meta["inline_message_id"] = query["inline_message_id"]
    if user.get("username"):
        meta["username"] = user["username"]
    data = query.get("data")
    survey = survey_answer(data)
    if survey is not None:
        # A satisfaction survey's button: the hub records the score. Only the token's hash is
        # kept, so the stored message cannot be used to answer in the customer's name.
        meta["csat"] = survey
        text = f"[satisfaction survey: {survey['score']}]"  # hub/csat/surveys.py looks for this text
    elif isinstance(data, str) and data:
        text = data
    elif query.get("game_short_name"):
        text = f"[game {query['game_short_name']}]"
    else:
        text = "[button]"
    text = _safe(text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        meta["truncated"] = True
    return InboundMessage(
        channel=CHANNEL,
        external_id=f"{bot}:cb:{query['id']}",
        sender=Sender(str(user["id"]), _full_name(user), kind="telegram"),
        text=text,
        thread=ThreadHints(in_reply_to=in_reply_to, thread_key=thread_key),
        metadata=_safe_json(meta),
        kind="callback",
    )


# The callback data of a satisfaction survey's buttons, "csat:<token>:<score>" (hub/csat/surveys.py).
SURVEY_PREFIX = "csat:"


def survey_answer(data: Any) -> dict[str, Any] | None:
    """{"token_sha256", "score"} of a survey button's callback data, or None if it is not one."""
    if not isinstance(data, str) or not data.startswith(SURVEY_PREFIX):
        return None
    token, _, score = data[len(SURVEY_PREFIX):].rpartition(":")
    if not token or score not in ("1", "2", "3", "4", "5"):
        return None
    return {"token_sha256": hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(), "score": int(score)}


# --- small pieces ----------------------------------------------------------------------------------


def own_phone(number: Any) -> str | None:
    """A contact's phone number as +E.164, or None if it cannot be a phone number. Telegram leaves
    out the '+' on the numbers of its own users."""
    if not isinstance(number, str):
        return None
    digits = re.sub(r"[\s().-]", "", number)
    if not digits.startswith("+"):
        digits = "+" + digits
    try:
        parsed = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def utf16_slice(text: str, offset: Any, length: Any) -> str:
    """Telegram counts entity offsets in UTF-16 code units."""
    return _utf16_piece(text.encode("utf-16-le", "surrogatepass"), offset, length)


def _utf16_piece(encoded: bytes, offset: Any, length: Any) -> str:
    if not _is_int(offset) or not _is_int(length) or offset < 0 or length <= 0:
        return ""
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _full_name(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    name = " ".join(obj[k].strip() for k in ("first_name", "last_name") if isinstance(obj.get(k), str) and obj[k])
    name = name or next((obj[k] for k in ("title", "username") if isinstance(obj.get(k), str) and obj[k]), None)
    return _safe(name[:MAX_NAME]) or None if name else None


MAX_NAME = 256  # Telegram's names are at most 64 characters


def _safe(text: str) -> str:
    """No NUL (PostgreSQL refuses it) and no lone surrogates (not encodable as UTF-8)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _safe_json(value: Any, depth: int = 0) -> Any:
    """Metadata as it is stored: strings made safe, and no deeper or longer than a real update's
    (a forwarded message's origin is three levels deep; a forged one may nest thousands)."""
    if isinstance(value, str):
        return _safe(value)
    if depth >= _MAX_META_DEPTH and isinstance(value, (dict, list)):
        return None
    if isinstance(value, dict):
        return {_safe(str(k)): _safe_json(v, depth + 1) for k, v in itertools.islice(value.items(), _MAX_META_ITEMS)}
    if isinstance(value, list):
        return [_safe_json(v, depth + 1) for v in value[:_MAX_META_ITEMS]]
    return value


_MAX_META_DEPTH = 6
_MAX_META_ITEMS = 1000


def _same_name(name: str | None, bot_username: str | None) -> bool:
    return bool(name and bot_username and name.lower() == bot_username.lstrip("@").lower())


def _coords(loc: Any) -> str:
    lat, lon = _get(loc, "latitude"), _get(loc, "longitude")
    return f"{lat},{lon}" if lat is not None and lon is not None else ""


def _location(loc: Any) -> dict:
    if not isinstance(loc, dict):
        return {}
    return {k: loc[k] for k in ("latitude", "longitude", "horizontal_accuracy", "live_period") if k in loc}


def _amount(total: Any, currency: Any) -> str:
    if not _is_int(total):
        return "?"
    if currency in _ZERO_DECIMAL:
        return str(total)
    return f"{total / 100:.2f}"


def _time(value: Any) -> datetime | None:
    if not _is_int(value) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None

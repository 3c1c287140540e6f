"""Satisfaction surveys (CSAT): one question, "how satisfied are you?", 1..5, asked once per
conversation when it is resolved, on the customer's own channel, through the outbox.

- Email (and web form / voice conversations whose customer has an email address): a short mail
  with five links to the survey page, /csat/{token}?score=N. Following a link only opens the page
  with that score chosen; the answer is stored when the customer presses Send. Mail scanners open
  every link of a mail, and must not answer for the customer.
- Telegram: a message with inline buttons 1..5 whose callback data is "csat:{token}:{score}". The
  Telegram channel turns the press into a callback message carrying only the token's SHA-256 (see
  channels/telegram/parse.py); record_callback() stores the answer.

The token is random and only its SHA-256 is stored. A survey is never sent to machines: not when the
conversation's last inbound message was automated (auto-reply, bounce, bulk mail), nor when
surveys are off or the channel is not among CsatSettings.channels.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update

from hub.config.settings import Settings, load_settings
from hub.contract import i18n
from hub.contract.errors import NotFound, RejectedInput
from hub.contract.i18n import N_, Word
from hub.contract.i18n import gettext as _
from hub.contract.messages import AUTOMATED_FLAGS
from hub.contract.timefmt import iso
from hub.outbox import compose_message
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, Csat, CsatSurvey, Direction, Message, utcnow
from hub.store.sql import insert_ignoring_conflict

log = logging.getLogger(__name__)

conversation_t = Conversation.__table__
message_t = Message.__table__
csat_t = Csat.__table__
survey_t = CsatSurvey.__table__

SCORES = (1, 2, 3, 4, 5)
MAX_COMMENT = 2000
# Telegram callback data of a survey button (at most 64 bytes: "csat:" + 22 + ":5").
CALLBACK_PREFIX = "csat:"
# The text the Telegram channel stores for a press of a survey button (channels/telegram/parse.py).
CALLBACK_TEXT_PREFIX = "[satisfaction survey:"
# Channels a survey can go out on; web form and voice conversations are surveyed by email.
SURVEY_CHANNEL = {"email": "email", "telegram": "telegram", "webform": "email", "voice": "email"}


class SurveyUnknown(NotFound):
    """No survey has this token (mistyped, or never issued)."""

    code = "survey_unknown"


class SurveyExpired(RejectedInput):
    """The survey's answering time is over."""

    code = "survey_expired"


# --- settings per engine -------------------------------------------------------------------------

# update_conversation() has no settings of its own: the web app registers its settings for its
# engine; a caller without an app (the demo, the CLI) gets the environment's.
_SETTINGS: weakref.WeakKeyDictionary[Engine, Settings] = weakref.WeakKeyDictionary()


def configure(engine: Engine, settings: Settings) -> None:
    _SETTINGS[engine] = settings


def settings_for(engine: Engine) -> Settings:
    found = _SETTINGS.get(engine)
    if found is None:
        found = load_settings()
        _SETTINGS[engine] = found
    return found


# --- tokens ------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(16)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def callback_data(token: str, score: int) -> str:
    return f"{CALLBACK_PREFIX}{token}:{score}"


# --- wording -----------------------------------------------------------------------------------

# The survey's words in English, marked for the catalog (hub/locale): words() gives them in the
# customer's language. {ref}, {days}, {until}, {n}, {score} are filled in by the callers.
WORDS = {
    "subject": N_("How did we do? [#{ref}]"),
    "question": N_("How satisfied are you with the help you received?"),
    "scale": N_("1 = very dissatisfied, 5 = very satisfied"),
    "intro": N_("Hello,\n\nyour request #{ref} has been resolved. One question: how satisfied are you with the help "
                "you received? Choose a score (1 = very dissatisfied, 5 = very satisfied):"),
    "outro": N_("The links work for {days} days. Thank you!"),
    "telegram": N_("Your request #{ref} has been resolved. How satisfied are you with our help?\n"
                   "Tap a number: 1 = very dissatisfied, 5 = very satisfied."),
    "labels": {1: N_("1 - very dissatisfied"), 2: N_("2 - dissatisfied"), 3: N_("3 - neutral"), 4: N_("4 - satisfied"),
               5: N_("5 - very satisfied")},
    "comment": N_("Anything you would like to tell us? (optional)"),
    "send": N_("Send"),
    "thanks_title": N_("Thank you!"),
    "thanks": N_("Your answer has been recorded. You can change it with the same link until {until}."),
    "title": N_("Your opinion"),
    "expired_title": N_("This survey has closed"),
    "expired": N_("The time to answer this survey is over. Thank you all the same."),
    "choose": N_("Please choose a score from 1 to 5."),
    "too_long": N_("Please keep your comment under {n} characters."),
    "answered": N_("You answered {score}. You can change your answer until {until}."),
}


def words(language: str | None) -> dict:
    """The survey's words in `language` (English for one the catalog does not have)."""
    with i18n.use(language):
        return {key: ({n: _(label) for n, label in value.items()} if isinstance(value, dict) else _(value))
                for key, value in WORDS.items()}


def _language(text: str | None) -> str:
    from knowledge.entities import (
        language,  # the routing's own rule for "is this Chinese?"
    )

    return language(text or "")


def survey_url(public_url: str, token: str, score: int | None = None) -> str:
    base = f"{public_url.rstrip('/')}/csat/{token}"
    return base if score is None else f"{base}?score={score}"


def email_body(ref: int, token: str, language: str, public_url: str, valid_days: int) -> tuple[str, str]:
    """(text, html) of the survey mail."""
    w = words(language)
    lines = [w["intro"].format(ref=ref), ""]
    for n in SCORES:
        lines.append(f"  {w['labels'][n]}: {survey_url(public_url, token, n)}")
    lines += ["", w["outro"].format(days=valid_days)]
    text = "\n".join(lines) + "\n"
    from markupsafe import escape

    links = " ".join(
        f'<a href="{escape(survey_url(public_url, token, n))}" title="{escape(w["labels"][n])}">{n}</a>'
        for n in SCORES
    )
    html = (
        f"<p>{escape(w['intro'].format(ref=ref)).replace(chr(10), '<br>')}</p>"
        f"<p>{links}</p><p>{escape(w['scale'])}</p><p>{escape(w['outro'].format(days=valid_days))}</p>"
    )
    return text, html


# --- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyPlan:
    """Where a conversation's survey goes, or why it does not (reason)."""

    channel: str | None = None
    recipient: str | None = None
    reply_to: tuple[str, ...] = ()
    language: str = "en"
    # Why none goes: an English template (N_) and its values, worded where it is shown (`said`).
    reason: str | None = None
    reason_params: dict = field(default_factory=dict)


def plan_survey(conn, conv, settings: Settings) -> SurveyPlan:
    """Decide whether and where the conversation's survey goes; never raises for a "no"."""
    from hub.conversations import recipient

    csat = settings.csat
    if not csat.enabled:
        return SurveyPlan(reason=N_("surveys are off"))
    if conv.channel not in csat.channels or conv.channel not in SURVEY_CHANNEL:
        return SurveyPlan(reason=N_("no surveys on %(channel)s"), reason_params={"channel": Word(conv.channel)})
    last = conn.execute(
        select(message_t.c.text, message_t.c.metadata)
        .where(message_t.c.conversation_id == conv.id, message_t.c.direction == Direction.inbound)
        .order_by(message_t.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return SurveyPlan(reason=N_("no message from the customer"))
    flags = set((last.metadata or {}).get("flags") or ())
    if flags & AUTOMATED_FLAGS:
        # An auto-reply or a bounce is the last word: a survey would go to a machine (or loop).
        return SurveyPlan(reason=N_("the last message was automated (%(flags)s)"),
                          reason_params={"flags": Word(", ".join(f.replace("_", " ") for f in sorted(flags & AUTOMATED_FLAGS)))})
    channel = SURVEY_CHANNEL[conv.channel]
    try:
        channel, address, reply_to = recipient(conn, conv, channel)
    except RejectedInput as exc:
        return SurveyPlan(reason=exc.template, reason_params=exc.params)
    return SurveyPlan(channel=channel, recipient=address, reply_to=tuple(reply_to), language=customer_language(last))


def customer_language(message) -> str:
    """The language to write to a customer in, from their last message: Chinese when they wrote
    Chinese; else the language of the page they wrote it on (the web form's, in the message's
    metadata); else English."""
    by_text = _language(message.text)
    if by_text != "en":
        return by_text
    return i18n.normalise((message.metadata or {}).get("language")) or "en"


def answered_by_a_person(conn, conversation_id: int) -> bool:
    """Whether an agent wrote to the customer in this conversation (automatic answers and the
    hub's own messages do not count: a survey about help no person gave surprises the customer)."""
    return conn.execute(
        select(message_t.c.id)
        .where(message_t.c.conversation_id == conversation_id, message_t.c.direction == Direction.outbound,
               message_t.c.author_agent_id.is_not(None))
        .limit(1)
    ).first() is not None


def survey_on_resolve(conn, conversation_id: int, *, settings: Settings | None = None,
                      said: Callable[[str, dict], str] = lambda template, params: template % params if params else template,
                      ) -> dict[str, Any]:
    """What resolving the conversation now would do about its survey, for the agent to see before:
    would_send (by default), channel and recipient, answered (an agent replied), needs_confirmation
    (a survey could go but nobody answered, so it goes only when the resolve confirms it: survey=true),
    and reason when none can go (in English; `said` words it otherwise: the inbox's, in the agent's language)."""
    settings = settings or settings_for(conn.engine)
    conv = conn.execute(select(conversation_t).where(conversation_t.c.id == conversation_id)).first()
    if conv is None:
        raise NotFound(N_("conversation %(id)s does not exist"), params={"id": conversation_id})
    answered = answered_by_a_person(conn, conversation_id)
    out: dict[str, Any] = {"conversation_id": conversation_id, "possible": False, "would_send": False, "channel": None,
                           "recipient": None, "answered": answered, "needs_confirmation": False, "reason": None}
    if conn.execute(select(survey_t.c.id).where(survey_t.c.conversation_id == conversation_id)).first():
        out["reason"] = said(N_("a survey was sent for this conversation before"), {})
        return out
    plan = plan_survey(conn, conv, settings)
    if plan.channel is None:
        out["reason"] = said(plan.reason, plan.reason_params)
        return out
    out.update(possible=True, would_send=answered, channel=plan.channel, recipient=plan.recipient,
               needs_confirmation=not answered)
    if not answered:
        out["reason"] = said(N_("no agent has replied in this conversation"), {})
    return out


def survey_on_resolve_of(engine: Engine, conversation_id: int) -> dict[str, Any]:
    """survey_on_resolve in a transaction of its own."""
    with read_tx(engine) as conn:
        return survey_on_resolve(conn, conversation_id)


def queue_survey(conn, conversation_id: int, *, settings: Settings | None = None, now: datetime | None = None,
                 send: bool | None = None) -> int | None:
    """Queue the survey of a conversation just resolved, in the caller's transaction. Returns the
    survey id, or None when none goes out (already surveyed, off, automated, no way to reach).

    send: the agent's choice on the resolve. False skips the survey; True sends it even though no
    agent replied; None (not said) sends it only when an agent replied (survey_on_resolve)."""
    settings = settings or settings_for(conn.engine)
    now = now or utcnow()
    if send is False:
        log.info("conversation %s: no satisfaction survey: the agent skipped it", conversation_id)
        return None
    conv = conn.execute(select(conversation_t).where(conversation_t.c.id == conversation_id)).first()
    if conv is None:
        return None
    if conn.execute(select(survey_t.c.id).where(survey_t.c.conversation_id == conversation_id)).first():
        return None  # one survey per conversation, ever
    if send is None and not answered_by_a_person(conn, conversation_id):
        log.info("conversation %s: no satisfaction survey: no agent replied and the resolve did not ask for one", conversation_id)
        return None
    plan = plan_survey(conn, conv, settings)
    if plan.channel is None:
        log.info("conversation %s: no satisfaction survey: %s", conversation_id, plan.reason % plan.reason_params)
        return None
    token = new_token()
    survey_id = insert_ignoring_conflict(conn, survey_t, {
        "conversation_id": conversation_id,
        "token_hash": hash_token(token),
        "channel": plan.channel,
        "language": plan.language,
        "agent_id": conv.assignee_id,
        "created_at": now,
        "expires_at": now + timedelta(days=settings.csat.valid_days),
    })
    if survey_id is None:
        return None  # a concurrent resolve queued it first
    w = words(plan.language)
    subject = w["subject"].format(ref=conversation_id)
    buttons: list[list[str]] = []
    if plan.channel == "telegram":
        text, html = w["telegram"].format(ref=conversation_id), None
        buttons = [[str(n), callback_data(token, n)] for n in SCORES]
    else:
        # compose_message() sanitises the HTML, as it does every message's.
        text, html = email_body(conversation_id, token, plan.language, settings.public_url, settings.csat.valid_days)
    message_id = compose_message(
        conn,
        conversation_id=conversation_id,
        channel=plan.channel,
        recipient=plan.recipient,
        text=text,
        html=html,
        subject=subject,
        reply_to=plan.reply_to,
        thread_key=conv.thread_key,
        buttons=buttons,
        # What agents see: the survey without its token (the links answer in the customer's name).
        shown_text=w["telegram"].format(ref=conversation_id) if plan.channel == "telegram"
        else f"{w['intro'].format(ref=conversation_id)}\n[survey links 1-5]",
        metadata={"automatic": "csat_survey", "csat_survey": survey_id},
        idempotency_key=f"csat-survey:{survey_id}",
    ).message_id
    conn.execute(update(survey_t).where(survey_t.c.id == survey_id).values(message_id=message_id))
    return survey_id


# --- answers -----------------------------------------------------------------------------------


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def find_survey(conn, token: str | None, *, now: datetime | None = None):
    """The survey of a token; SurveyUnknown or SurveyExpired otherwise."""
    if not token or len(token) > 100:
        raise SurveyUnknown("there is no survey at this address")
    q = select(survey_t).where(survey_t.c.token_hash == hash_token(token))
    return _valid(conn.execute(q).first(), now)


def _valid(row, now: datetime | None):
    if row is None:
        raise SurveyUnknown("there is no survey at this address")
    if _aware(row.expires_at) <= (now or utcnow()):
        raise SurveyExpired("the time to answer this survey is over", detail={"language": row.language})
    return row


def survey_view(engine: Engine, token: str, *, now: datetime | None = None) -> dict[str, Any]:
    """What the survey page shows: the survey's language and validity, and the answer so far."""
    with read_tx(engine) as conn:
        survey = find_survey(conn, token, now=now)
        answer = conn.execute(
            select(csat_t.c.score, csat_t.c.comment).where(csat_t.c.conversation_id == survey.conversation_id)
        ).first()
    return {
        "conversation_id": survey.conversation_id,
        "language": survey.language,
        "expires_at": _aware(survey.expires_at),
        "score": answer.score if answer else None,
        "comment": answer.comment if answer else None,
    }


def check_answer(score: Any, comment: Any) -> tuple[int, str | None]:
    """The score as an int 1..5 and the comment (None when blank); RejectedInput otherwise."""
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        raise RejectedInput("the score must be a whole number from 1 to 5") from None
    if value not in SCORES:
        raise RejectedInput("the score must be a whole number from 1 to 5")
    text = comment.strip() if isinstance(comment, str) else None
    if text and len(text) > MAX_COMMENT:
        raise RejectedInput(f"the comment is longer than {MAX_COMMENT} characters")
    return value, text or None


def _save(conn, survey, score: int, comment: str | None, channel: str, now: datetime) -> dict[str, Any]:
    values = {"score": score, "channel": channel, "answered_at": now, "agent_id": survey.agent_id}
    if comment is not None:
        values["comment"] = comment  # an answer without a comment keeps the earlier one
    new_id = insert_ignoring_conflict(
        conn, csat_t, dict(values, conversation_id=survey.conversation_id, created_at=now, comment=comment)
    )
    if new_id is None:
        conn.execute(update(csat_t).where(csat_t.c.conversation_id == survey.conversation_id).values(**values))
    row = conn.execute(select(csat_t).where(csat_t.c.conversation_id == survey.conversation_id)).one()
    return answer_dict(row)


def record_answer(engine: Engine, token: str, score: Any, comment: Any = None, *, channel: str = "web",
                  now: datetime | None = None) -> dict[str, Any]:
    """Store (or, within the survey's validity, change) the answer given with a token."""
    score, comment = check_answer(score, comment)
    now = now or utcnow()
    with write_tx(engine) as conn:
        survey = find_survey(conn, token, now=now)
        return _save(conn, survey, score, comment, channel, now)


def parse_callback(data: str | None) -> tuple[str, int] | None:
    """(token, score) of a survey button's callback data, or None if it is not one."""
    if not data or not data.startswith(CALLBACK_PREFIX):
        return None
    token, _sep, score = data[len(CALLBACK_PREFIX):].rpartition(":")
    if not token or not score.isdigit() or int(score) not in SCORES:
        return None
    return token, int(score)


def record_callback(engine: Engine, message_id: int, *, now: datetime | None = None) -> dict[str, Any] | None:
    """A stored Telegram button press that answers a survey: record its score. The channel keeps
    only the token's hash in the message's metadata ({"csat": {"token_sha256", "score"}}). Returns
    the answer, or None when the message is no survey answer or the survey cannot take it."""
    # Called for every new message: a read first, a write only for a survey answer.
    with read_tx(engine) as conn:
        msg = conn.execute(
            select(message_t.c.metadata, message_t.c.channel, message_t.c.created_at).where(message_t.c.id == message_id)
        ).first()
    if msg is None or msg.channel != "telegram":
        return None
    # The press counts when it was made (stored), also when it is recorded late (record_missed).
    now = now or _aware(msg.created_at)
    press = (msg.metadata or {}).get("csat")
    if not isinstance(press, dict) or press.get("score") not in SCORES or not isinstance(press.get("token_sha256"), str):
        return None
    with write_tx(engine) as conn:
        row = conn.execute(select(survey_t).where(survey_t.c.token_hash == press["token_sha256"])).first()
        try:
            survey = _valid(row, now)
        except (SurveyUnknown, SurveyExpired) as exc:
            log.info("Telegram survey answer in message %s not recorded: %s", message_id, exc.message)
            return None
        return _save(conn, survey, press["score"], None, "telegram", now)


def record_missed(engine: Engine, *, valid_days: int, now: datetime | None = None) -> int:
    """Record Telegram survey presses stored but not recorded (the hub stopped between storing a
    press and recording it): presses of the last valid_days newer than their survey's answer.
    Run at start; idempotent. Returns how many were recorded."""
    now = now or utcnow()
    with read_tx(engine) as conn:
        ids = conn.execute(
            select(message_t.c.id)
            .join(survey_t, survey_t.c.conversation_id == message_t.c.conversation_id)
            .outerjoin(csat_t, csat_t.c.conversation_id == message_t.c.conversation_id)
            .where(
                message_t.c.direction == Direction.system,
                message_t.c.channel == "telegram",
                message_t.c.created_at >= now - timedelta(days=valid_days),
                message_t.c.text.like(f"{CALLBACK_TEXT_PREFIX}%"),
                or_(csat_t.c.id.is_(None), csat_t.c.answered_at.is_(None), csat_t.c.answered_at < message_t.c.created_at),
            )
            .order_by(message_t.c.id)
        ).scalars().all()
    return sum(1 for message_id in ids if record_callback(engine, message_id) is not None)


def answer_dict(row) -> dict[str, Any]:
    return {
        "score": row.score,
        "comment": row.comment,
        "channel": row.channel,
        "answered_at": iso(row.answered_at or row.created_at),
        "first_answered_at": iso(row.created_at),
    }


def conversation_csat(engine: Engine, conversation_id: int) -> dict[str, Any]:
    """The survey of a conversation and its answer, for agents."""
    from hub.conversations import require_conversation

    with read_tx(engine) as conn:
        require_conversation(conn, conversation_id)
        survey = conn.execute(select(survey_t).where(survey_t.c.conversation_id == conversation_id)).first()
        answer = conn.execute(select(csat_t).where(csat_t.c.conversation_id == conversation_id)).first()
    return {
        "conversation_id": conversation_id,
        "survey": None if survey is None else {
            "channel": survey.channel,
            "language": survey.language,
            "message_id": survey.message_id,
            "sent_at": iso(survey.created_at),
            "expires_at": iso(survey.expires_at),
        },
        "answer": None if answer is None else answer_dict(answer),
    }

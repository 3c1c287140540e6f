"""Satisfaction surveys end to end, on SQLite and PostgreSQL: resolving a conversation sends ONE
survey on the customer's channel through the outbox; the email survey reaches the customer's mail
server (aiosmtpd on loopback) and its link answers on the survey page; the Telegram survey carries
an inline keyboard in Telegram's shape (tests/support/fake_telegram.py) and a button press records the score;
auto-replies and bounces get none; the page's CSRF check and expired / unknown tokens."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from hub.config.settings import CsatSettings, Settings, SmtpReceiverSettings, SmtpSenderSettings
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.actions import update_conversation
from hub.csat import surveys as csat
from hub.ingest.pipeline import ingest
from hub.store.db import read_tx, write_tx
from hub.store.models import Csat, CsatSurvey, Outbox, utcnow
from tests.support.email import customer_mx, mail, running_hub, smtp_send, with_email
from tests.support.telegram import USER, load
from tests.support.waiting import eventually, wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")]

ANA = "ana@example.com"
ADMIN = Principal("agent", 1, "admin", "admin@shop.example")
PUBLIC = "https://hub.example"


def email_from(address: str, text: str, *, n: int = 1, flags: tuple[str, ...] = (), subject: str = "Question") -> InboundMessage:
    return InboundMessage(channel="email", external_id=f"<m{n}-{address}>", sender=Sender(address, "Ana Lima"),
                          text=text, subject=subject, flags=flags)


def surveys(engine) -> list:
    with read_tx(engine) as conn:
        return conn.execute(select(CsatSurvey.__table__)).all()


def survey_rows(engine) -> list:
    with read_tx(engine) as conn:
        return conn.execute(
            select(Outbox.__table__).where(Outbox.__table__.c.idempotency_key.like("csat-survey:%"))
        ).all()


def resolve(engine, cid: int):
    # Confirmed: these conversations had no agent reply, which sends no survey unless the resolve asks for one.
    return update_conversation(engine, cid, {"status": "resolved"}, ADMIN, survey=True)


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+/csat/[\w-]+\?score=\d", text)


# --- sending: when a survey goes out, and when it never does ----------------------------------------


def test_one_survey_per_conversation_in_the_customers_language(engine):
    csat.configure(engine, Settings(public_url=PUBLIC))
    result = ingest(engine, email_from(ANA, "Hello, where is my order 1234?"))
    resolve(engine, result.conversation_id)
    update_conversation(engine, result.conversation_id, {"status": "open"}, ADMIN)
    resolve(engine, result.conversation_id)  # re-resolved: no second survey

    [survey] = surveys(engine)
    assert survey.channel == "email" and survey.language == "en"
    [row] = survey_rows(engine)
    assert row.channel == "email" and row.payload["recipient"] == ANA
    assert row.payload["subject"] == f"How did we do? [#{result.conversation_id}]"
    links = links_in(row.payload["text"])
    assert [link[-1] for link in links] == ["1", "2", "3", "4", "5"]
    assert all(link.startswith(f"{PUBLIC}/csat/") for link in links)
    assert f'{PUBLIC}/csat/' in row.payload["html"]
    # Only the token's hash is stored, and the message agents see carries no link.
    token = urlparse(links[0]).path.rsplit("/", 1)[1]
    assert survey.token_hash == csat.hash_token(token) and token not in str(survey)
    conv = update_conversation(engine, result.conversation_id, {"priority": "normal"}, ADMIN)
    shown = [m for m in conv["messages"] if m["automatic"]]
    assert len(shown) == 1 and token not in shown[0]["text"]

    chinese = ingest(engine, email_from("li@example.com", "你好，我的订单什么时候发货？", n=2))
    resolve(engine, chinese.conversation_id)
    zh = next(s for s in surveys(engine) if s.conversation_id == chinese.conversation_id)
    assert zh.language == "zh"
    payload = next(r.payload for r in survey_rows(engine) if r.payload["conversation_id"] == chinese.conversation_id)
    assert payload["subject"].startswith("您对我们的服务满意吗") and "非常满意" in payload["text"]


@pytest.mark.parametrize("flag", ["auto_reply", "bounce", "bulk"])
def test_never_to_automated_mail(engine, flag):
    csat.configure(engine, Settings(public_url=PUBLIC))
    first = ingest(engine, email_from(ANA, "Where is my parcel?"))
    # The customer's mailbox answered the agent with an out-of-office / the mail bounced.
    ingest(engine, email_from(ANA, "I am out of the office until Monday.", n=2, flags=(flag,),
                              subject=f"Re: Question [#{first.conversation_id}]"))
    resolve(engine, first.conversation_id)
    assert surveys(engine) == [] and survey_rows(engine) == []

    # A conversation opened by a machine (stored closed) gets none either when resolved.
    machine = ingest(engine, email_from("mailer-daemon@example.net", "Delivery failed", n=3, flags=(flag,)))
    resolve(engine, machine.conversation_id)
    assert surveys(engine) == []


def test_off_or_channel_not_listed_sends_none(engine):
    result = ingest(engine, email_from(ANA, "Hello"))
    with write_tx(engine) as conn:
        off = Settings(csat=CsatSettings(enabled=False))
        assert csat.queue_survey(conn, result.conversation_id, settings=off, send=True) is None
        telegram_only = Settings(csat=CsatSettings(channels=["telegram"]))
        assert csat.queue_survey(conn, result.conversation_id, settings=telegram_only, send=True) is None
    assert surveys(engine) == []


def test_web_form_conversation_without_email_gets_none(engine):
    csat.configure(engine, Settings(public_url=PUBLIC))
    phone = InboundMessage(channel="webform", external_id="form-1", sender=Sender("+4915112345678", "Bo", kind="phone"),
                           text="Please call me back")
    result = ingest(engine, phone)
    resolve(engine, result.conversation_id)
    assert surveys(engine) == []
    with_mail = InboundMessage(channel="webform", external_id="form-2", sender=Sender("bo@example.com", "Bo", kind="email"),
                               text="Where is my order?")
    result = ingest(engine, with_mail)
    resolve(engine, result.conversation_id)
    [survey] = surveys(engine)
    assert survey.channel == "email"


# --- answers in the store ------------------------------------------------------------------------


def _survey_token(engine, conversation_id: int) -> str:
    row = next(r for r in survey_rows(engine) if r.payload["conversation_id"] == conversation_id)
    return urlparse(links_in(row.payload["text"])[0]).path.rsplit("/", 1)[1]


def test_answers_update_within_validity_and_not_after(engine):
    csat.configure(engine, Settings(public_url=PUBLIC, csat=CsatSettings(valid_days=7)))
    result = ingest(engine, email_from(ANA, "Hello"))
    resolve(engine, result.conversation_id)
    token = _survey_token(engine, result.conversation_id)

    first = csat.record_answer(engine, token, "2", "Slow answer")
    assert first["score"] == 2 and first["comment"] == "Slow answer" and first["channel"] == "web"
    later = csat.record_answer(engine, token, 4, "")
    assert later["score"] == 4 and later["comment"] == "Slow answer"  # a blank comment keeps the earlier one
    with read_tx(engine) as conn:
        [row] = conn.execute(select(Csat.__table__)).all()
    assert row.conversation_id == result.conversation_id and row.score == 4

    for bad in ("0", "6", "x", None):
        with pytest.raises(csat.RejectedInput):
            csat.record_answer(engine, token, bad)
    with pytest.raises(csat.SurveyUnknown):
        csat.record_answer(engine, "no-such-token", 5)
    with pytest.raises(csat.SurveyExpired):
        csat.record_answer(engine, token, 5, now=utcnow() + timedelta(days=8))
    assert csat.conversation_csat(engine, result.conversation_id)["answer"]["score"] == 4


# --- the survey page -------------------------------------------------------------------------------


async def test_survey_page_csrf_expired_and_unknown(settings):
    async with running_hub(settings.model_copy(update={"public_url": PUBLIC})) as hub:
        result = ingest(hub.engine, email_from(ANA, "Hello"))
        resolve(hub.engine, result.conversation_id)
        token = _survey_token(hub.engine, result.conversation_id)

        page = await hub.client.get(f"/csat/{token}?score=3")
        assert page.status == 200
        html = await page.text()
        assert 'value="3" required checked' in html and "<textarea" in html
        csrf = re.search(r'name="_csrf" value="([^"]+)"', html).group(1)

        # Without the cookie (another site's form), or with a wrong field: refused, nothing stored.
        hub.client.session.cookie_jar.clear()
        refused = await hub.client.post(f"/csat/{token}", data={"_csrf": csrf, "score": "1"})
        assert refused.status == 403
        page = await hub.client.get(f"/csat/{token}")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', await page.text()).group(1)
        wrong = await hub.client.post(f"/csat/{token}", data={"_csrf": csrf + "x", "score": "1"})
        assert wrong.status == 403
        assert csat.conversation_csat(hub.engine, result.conversation_id)["answer"] is None

        # A part whose header holds a control character: the body cannot be read, said plainly.
        garbled = (b'--b\r\nContent-Disposition: form-data; name="\x07x"\r\n\r\n1\r\n'
                   b'--b\r\nContent-Disposition: form-data; name="score"\r\n\r\n1\r\n--b--\r\n')
        unreadable = await hub.client.post(f"/csat/{token}", data=garbled,
                                           headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert unreadable.status == 400 and "could not be read" in await unreadable.text()
        assert csat.conversation_csat(hub.engine, result.conversation_id)["answer"] is None

        invalid = await hub.client.post(f"/csat/{token}", data={"_csrf": csrf, "score": "9", "comment": "kept"})
        assert invalid.status == 422 and "kept" in await invalid.text()
        ok = await hub.client.post(f"/csat/{token}", data={"_csrf": csrf, "score": "5", "comment": "Great <b>help</b>"})
        assert ok.status == 200 and "Thank you" in await ok.text()
        answer = csat.conversation_csat(hub.engine, result.conversation_id)["answer"]
        assert answer["score"] == 5 and answer["comment"] == "Great <b>help</b>"
        again = await hub.client.get(f"/csat/{token}")
        assert "Great &lt;b&gt;help&lt;/b&gt;" in await again.text()  # escaped, never markup

        # A customer who wrote in Chinese gets the page in Chinese.
        li = ingest(hub.engine, email_from("li@example.com", "你好，我的订单什么时候发货？", n=3))
        resolve(hub.engine, li.conversation_id)
        zh_page = await (await hub.client.get(f"/csat/{_survey_token(hub.engine, li.conversation_id)}")).text()
        assert '<html lang="zh">' in zh_page and "您对我们提供的帮助满意吗" in zh_page

        unknown = await hub.client.get("/csat/not-a-token")
        assert unknown.status == 404 and "Survey not found" in await unknown.text()

        # A survey sent long ago: its page says it has closed (410), and nothing is recorded.
        old = ingest(hub.engine, email_from("old@example.com", "Hello", n=2))
        with write_tx(hub.engine) as conn:
            csat.queue_survey(conn, old.conversation_id, now=utcnow() - timedelta(days=30), send=True)
        old_token = _survey_token(hub.engine, old.conversation_id)
        closed = await hub.client.get(f"/csat/{old_token}?score=5")
        assert closed.status == 410 and "closed" in await closed.text()
        posted = await hub.client.post(f"/csat/{old_token}", data={"_csrf": csrf, "score": "5"})
        assert posted.status == 410
        assert csat.conversation_csat(hub.engine, old.conversation_id)["answer"] is None


# --- end to end: email -------------------------------------------------------------------------------


async def test_email_survey_end_to_end(settings):
    async with customer_mx() as mx:
        settings = with_email(
            settings.model_copy(update={"public_url": PUBLIC}),
            receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0),
            smtp=SmtpSenderSettings(host="127.0.0.1", port=mx.port, security="none", timeout_seconds=5),
        )
        async with running_hub(settings) as hub:
            await smtp_send(hub.smtp_port, mail(message_id="<question@example.com>"), sender=ANA)
            [conv] = await wait_until(lambda: hub.conversations_of(ANA), what="Ana's conversation")
            headers = await hub.headers()
            resp = await hub.client.patch(f"/api/v1/conversations/{conv['id']}", json={"status": "resolved", "survey": True}, headers=headers)
            assert resp.status == 200, await resp.text()

            await wait_until(lambda: mx.received, what="the survey at Ana's mail server")
            [sent] = mx.received
            assert sent.rcpt_tos == [ANA]
            assert f"[#{conv['id']}]" in sent.message["Subject"]
            body = sent.message.get_body(("plain",)).get_content()
            links = links_in(body)
            assert len(links) == 5

            # Ana follows "4" in the mail: the page opens with 4 chosen; she adds a comment and sends.
            link = urlparse(links[3])
            page = await hub.client.get(f"{link.path}?{link.query}")
            assert page.status == 200
            html = await page.text()
            assert 'value="4" required checked' in html
            csrf = re.search(r'name="_csrf" value="([^"]+)"', html).group(1)
            assert csat.conversation_csat(hub.engine, conv["id"])["answer"] is None  # opening never answers
            done = await hub.client.post(link.path, data={"_csrf": csrf, "score": "4", "comment": "Quick, thanks"})
            assert done.status == 200, await done.text()

            resp = await hub.client.get(f"/api/v1/conversations/{conv['id']}/csat", headers=headers)
            assert resp.status == 200
            out = await resp.json()
            assert out["survey"]["channel"] == "email"
            assert out["answer"]["score"] == 4 and out["answer"]["comment"] == "Quick, thanks"
            assert (await hub.client.get(f"/api/v1/conversations/{conv['id']}/csat")).status == 401

            # Reopened and resolved again: still the one survey.
            for status in ("open", "resolved"):
                resp = await hub.client.patch(f"/api/v1/conversations/{conv['id']}", json={"status": status}, headers=headers)
                assert resp.status == 200
            assert len(survey_rows(hub.engine)) == 1 and len(mx.received) == 1


# --- end to end: Telegram ----------------------------------------------------------------------------


async def test_telegram_survey_buttons_and_answer(start_hub, fake):
    hub = await start_hub()
    await hub.post_update(load("message.json"))
    await hub.wait_messages(1)
    (conv,) = await hub.conversations()
    resp = await hub.client.patch(f"/api/v1/conversations/{conv['id']}", json={"status": "resolved", "survey": True}, headers=hub.agent)
    assert resp.status == 200, await resp.text()

    async def survey_sent():
        return [c for c in fake.calls_to("sendMessage") if "reply_markup" in c.params]

    [call] = await eventually(survey_sent, what="the survey message")
    assert call.params["chat_id"] == USER
    assert f"#{conv['id']}" in call.params["text"]
    keyboard = call.params["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == [["1", "2", "3", "4", "5"]]
    datas = [b["callback_data"] for b in keyboard[0]]
    assert all(re.fullmatch(r"csat:[\w-]+:[1-5]", d) and len(d.encode()) <= 64 for d in datas)

    async def survey_delivered():
        msgs = (await hub.conversation(conv["id"]))["messages"]
        return [m for m in msgs if m["automatic"] and (m["delivery"] or {}).get("state") == "sent"]

    [survey_msg] = await eventually(survey_delivered, what="the survey delivered")
    telegram_message_id = int(survey_msg["external_id"].rsplit(":", 1)[1])

    press = {"update_id": 500001, "callback_query": {
        "id": "csat-press-1", "from": load("message.json")["message"]["from"], "chat_instance": "-50959",
        "data": datas[4],
        "message": {"message_id": telegram_message_id, "chat": {"id": USER, "type": "private"}, "date": 1700000000}}}
    assert (await hub.post_update(press)).status == 200

    async def answered():
        resp = await hub.client.get(f"/api/v1/conversations/{conv['id']}/csat", headers=hub.agent)
        return (await resp.json())["answer"]

    answer = await eventually(answered, what="the recorded answer")
    assert answer["score"] == 5 and answer["channel"] == "telegram"

    async def thanked():
        return [c for c in fake.calls_to("answerCallbackQuery") if c.params.get("callback_query_id") == "csat-press-1"]

    [thanks] = await eventually(thanked, what="answerCallbackQuery")
    assert "Thank you" in thanks.params["text"]
    # The press is a system line of the conversation, without the token; the conversation stays resolved.
    after = await hub.conversation(conv["id"])
    token = datas[4].split(":")[1]
    system = [m for m in after["messages"] if m["direction"] == "system"]
    assert [m["text"] for m in system] == ["[satisfaction survey: 5]"]
    assert all(token not in (m["text"] or "") for m in after["messages"])
    assert after["status"] == "resolved"

    # A second press (changing the mind to 2) updates the same answer.
    press2 = {"update_id": 500002, "callback_query": dict(press["callback_query"], id="csat-press-2", data=datas[1])}
    await hub.post_update(press2)

    async def changed():
        a = await answered()
        return a if a["score"] == 2 else None

    await eventually(changed, what="the changed answer")
    engine = hub.db()
    try:
        with read_tx(engine) as conn:
            assert len(conn.execute(select(Csat.__table__)).all()) == 1
    finally:
        engine.dispose()


def test_telegram_presses_stored_but_not_recorded_are_caught_up(engine):
    csat.configure(engine, Settings(public_url=PUBLIC))
    chat = ThreadHints(thread_key="default:777")
    first = ingest(engine, InboundMessage(channel="telegram", external_id="default:777:1", sender=Sender("777", "Mei", kind="telegram"),
                                          text="Where is my parcel?", thread=chat))
    resolve(engine, first.conversation_id)
    [row] = survey_rows(engine)
    assert row.channel == "telegram" and row.payload["recipient"] == "777"
    assert [label for label, _ in row.payload["buttons"]] == ["1", "2", "3", "4", "5"]
    data = row.payload["buttons"][2][1]
    token = csat.parse_callback(data)[0]
    # The hub stopped after storing the press and before recording it: the start catches up.
    press = InboundMessage(channel="telegram", external_id="default:cb:1", sender=Sender("777", "Mei", kind="telegram"),
                           text="[satisfaction survey: 3]", thread=chat, kind="callback",
                           metadata={"csat": {"token_sha256": csat.hash_token(token), "score": 3}})
    assert ingest(engine, press).conversation_id == first.conversation_id
    assert csat.conversation_csat(engine, first.conversation_id)["answer"] is None
    assert csat.record_missed(engine, valid_days=14) == 1
    assert csat.conversation_csat(engine, first.conversation_id)["answer"]["score"] == 3
    assert csat.record_missed(engine, valid_days=14) == 0  # idempotent
    # A press with a forged hash records nothing.
    forged = InboundMessage(channel="telegram", external_id="default:cb:2", sender=Sender("777", "Mei", kind="telegram"),
                            text="[satisfaction survey: 1]", thread=chat, kind="callback",
                            metadata={"csat": {"token_sha256": csat.hash_token("guess"), "score": 1}})
    assert csat.record_callback(engine, ingest(engine, forged).message_id) is None
    assert csat.conversation_csat(engine, first.conversation_id)["answer"]["score"] == 3


async def test_survey_page_is_rate_limited_per_client(settings):
    limited = settings.model_copy(update={"csat": CsatSettings(rate_per_minute=2)})
    async with running_hub(limited) as hub:
        statuses = [(await hub.client.get("/csat/some-token")).status for _ in range(3)]
        assert statuses[:2] == [404, 404]
        last = await hub.client.get("/csat/some-token")
        assert last.status == 429 and int(last.headers["Retry-After"]) >= 1
        assert (await hub.client.post("/csat/some-token", data={"score": "5"})).status == 429

"""The Telegram channel end to end: the real app (create_app) against tests/support/fake_telegram.py, fed
with the real updates in the fixtures, on SQLite and PostgreSQL. Webhook and polling mode, the
agent's reply back to the chat, files, edits, contacts, link codes, groups, several bots, long
texts, flood control and blocked users."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from channels.telegram import TelegramConfigError, from_settings
from channels.telegram.send import MAX_TEXT_UNITS, split_text, utf16_len
from hub.config.settings import TelegramBotSettings
from hub.contract import clock
from hub.contract.messages import Attachment, OutboundMessage
from hub.ingest.pipeline import LINKED_TEXT
from hub.ingest.spool import counts
from hub.ingest.spool import rejected as rejected_items
from hub.store.models import Message
from hub.store.state import load_state
from hub.web.app import create_app
from tests.support.telegram import BOT_ID, BOT_USERNAME, SECRET, TOKEN, USER, load
from tests.support.waiting import eventually

# PTB 22's RetryAfter reads its own deprecated int-valued retry_after while being built.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


def with_ids(update: dict, update_id: int, message_id: int | None = None) -> dict:
    """A fixture update under other ids (several fixtures share message_id 12345 in one chat)."""
    update = copy.deepcopy(update)
    update["update_id"] = update_id
    if message_id is not None:
        body = update.get("message") or update.get("edited_message")
        body["message_id"] = message_id
    return update


# --- webhook mode ------------------------------------------------------------------------------


async def test_webhook_is_set_at_start_with_the_secret(start_hub, fake):
    await start_hub()
    (call,) = fake.calls_to("setWebhook")
    assert call.params["url"] == "https://hub.example/channels/telegram/webhook"
    assert call.params["secret_token"] == SECRET
    assert set(call.params["allowed_updates"]) == {"message", "edited_message", "callback_query"}
    assert fake.calls_to("getMe")


async def test_webhook_refuses_a_missing_or_wrong_secret(start_hub):
    hub = await start_hub()
    update = load("message.json")
    for secret in (None, "", "wrong", SECRET + "x"):
        resp = await hub.post_update(update, secret=secret)
        assert resp.status == 403, secret
        assert (await resp.json())["error"]["code"] == "forbidden"
    await asyncio.sleep(0.2)
    assert await hub.conversations() == []


async def test_webhook_bad_bodies(start_hub):
    hub = await start_hub()
    resp = await hub.post_update(b"{not json")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"
    assert (await hub.post_update(b"[1, 2]")).status == 400
    assert (await hub.post_update({"message": {}})).status == 400  # no update_id
    big = b'{"update_id": 1, "message": {"text": "' + b"x" * (hub.settings.max_request_bytes + 10) + b'"}}'
    resp = await hub.post_update(io.BytesIO(big))
    assert resp.status == 413
    assert (await hub.post_update(load("message.json"))).status == 200
    engine = hub.db()
    rejected = await asyncio.to_thread(rejected_items, engine, channel="telegram")
    engine.dispose()
    assert sorted(r["reason"] for r in rejected) == [
        "an update is a JSON object with an integer update_id", "an update is a JSON object with an integer update_id",
        "the body is not valid JSON",
    ]


async def test_webhook_answers_200_to_kinds_it_does_not_handle(start_hub):
    hub = await start_hub()
    for name in ("message_from_channel.json", "pre_checkout_query.json", "shipping_query.json"):
        resp = await hub.post_update(load(name))
        assert resp.status == 200, name
    resp = await hub.post_update({"update_id": 5, "my_chat_member": {"chat": {"id": 1}}})
    assert resp.status == 200
    engine = hub.db()
    assert await asyncio.to_thread(counts, engine) == {}
    engine.dispose()


async def test_update_in_reply_out(start_hub, fake):
    hub = await start_hub()
    resp = await hub.post_update(load("message.json"))
    assert resp.status == 200
    (msg,) = await hub.wait_messages(1)
    assert msg["text"] == "Hi, world!"
    assert msg["external_id"] == f"default:{USER}:11223"
    assert msg["sender"] == {"kind": "telegram", "address": str(USER), "name": "FirstName LastName"}
    (conv,) = await hub.conversations()
    assert conv["customer"]["name"] == "FirstName LastName"

    # A reply to the quoted message joins the same conversation.
    await hub.post_update(load("reply_message.json"))
    await hub.wait_messages(2)
    assert [c["id"] for c in await hub.conversations()] == [conv["id"]]

    out = await hub.reply(conv["id"], "Your order ships today.")
    sent = await hub.delivery(conv["id"], out["id"], until=("sent",))
    (call,) = fake.calls_to("sendMessage")
    assert call.token == TOKEN
    assert call.params["chat_id"] == USER
    assert call.params["text"] == "Your order ships today."
    # The first answer quotes the customer's newest message; the next one does not repeat that.
    assert call.params["reply_parameters"]["message_id"] == 12345
    assert sent["external_id"] == f"default:{USER}:1001"

    out2 = await hub.reply(conv["id"], "Tracking: ZX123.")
    await hub.delivery(conv["id"], out2["id"], until=("sent",))
    assert "reply_parameters" not in fake.calls_to("sendMessage")[1].params

    # The customer answers the agent's message: threaded by the id the delivery recorded.
    answer = with_ids(load("reply_message.json"), 300001, 12346)
    answer["message"]["reply_to_message"]["message_id"] = 1001
    answer["message"]["text"] = "Thanks!"
    await hub.post_update(answer)
    await hub.wait_messages(3)
    assert len(await hub.conversations()) == 1


async def test_redelivery_never_duplicates(start_hub):
    hub = await start_hub()
    update = load("message.json")
    for _ in range(3):
        assert (await hub.post_update(update)).status == 200
    # The same message under another update id (update.json): deduplicated by its message id.
    assert (await hub.post_update(load("update.json"))).status == 200
    await hub.spool_settled(2)
    messages = await hub.messages()
    assert [m["text"] for m in messages] == ["Hi, world!"]
    engine = hub.db()
    assert (await asyncio.to_thread(counts, engine)).get("done") == 2
    engine.dispose()


async def test_edit_replaces_the_stored_text(start_hub):
    hub = await start_hub()
    await hub.post_update(load("forwarded_message.json"))  # message 12345 in the chat
    (msg,) = await hub.wait_messages(1)
    assert msg["text"].startswith("Forwarded text")
    await hub.post_update(load("edited_message.json"))  # edits message 12345
    await hub.spool_settled(2)
    (msg,) = [m for m in await hub.messages()]
    assert msg["text"] == "hi there (edited)"
    assert msg["external_id"] == f"default:{USER}:12345"


async def test_photo_and_document_are_downloaded_into_attachments(start_hub, fake):
    photo_bytes = b"\xff\xd8\xff\xe0 a small jpeg " * 40
    doc_bytes = b"PK\x03\x04 a docx " * 500
    photo = load("message_with_photo.json")
    document = with_ids(load("message_with_document.json"), 100107, 12399)
    fake.add_file(photo["message"]["photo"][-1]["file_id"], photo_bytes, "photos/file_7.jpg")
    fake.add_file(document["message"]["document"]["file_id"], doc_bytes, "documents/file_8.docx")
    hub = await start_hub()
    await hub.post_update(photo)
    await hub.post_update(document)
    messages = await hub.wait_messages(2)
    by_text = {m["text"]: m for m in messages}
    (att,) = by_text["photo description"]["attachments"]
    assert att["content_type"] == "image/jpeg" and att["size"] == len(photo_bytes)
    assert att["sha256"] == hashlib.sha256(photo_bytes).hexdigest()
    (att,) = by_text["Read my document"]["attachments"]
    assert att["filename"] == "test.docx" and att["size"] == len(doc_bytes)
    assert att["content_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert att["sha256"] == hashlib.sha256(doc_bytes).hexdigest()
    assert len(fake.calls_to("getFile")) == 2 and len(fake.calls_to("download")) == 2


async def test_a_file_over_the_limit_is_skipped_and_the_message_kept(start_hub, fake):
    hub = await start_hub(max_attachment_bytes=5000)
    document = load("message_with_document.json")  # declares 21331 bytes
    voice = with_ids(load("message_with_voice.json"), 100120, 12400)  # declares 4321, is bigger
    gone = with_ids(load("message_with_video_note.json"), 100121, 12401)  # unknown to getFile
    gone["message"]["video_note"]["file_size"] = 100
    fake.add_file(voice["message"]["voice"]["file_id"], b"O" * 9000, "voice/file_9.oga")
    for update in (document, voice, gone):
        await hub.post_update(update)
    messages = await hub.wait_messages(3)
    assert all(m["attachments"] == [] for m in messages)
    engine = hub.db()
    with engine.connect() as conn:
        meta = {r.external_id: r.metadata for r in conn.execute(select(Message.__table__)).all()}
    engine.dispose()
    assert "larger than 5000 bytes" in meta[f"default:{USER}:12345"]["files"][0]["skipped"]
    assert "larger than 5000 bytes" in meta[f"default:{USER}:12400"]["files"][0]["skipped"]
    assert "invalid file_id" in meta[f"default:{USER}:12401"]["files"][0]["skipped"].lower()
    # The declared size spared a getFile for the document.
    assert [c.params["file_id"] for c in fake.calls_to("getFile")] == [
        voice["message"]["voice"]["file_id"], gone["message"]["video_note"]["file_id"]
    ]


async def test_own_contact_adds_a_verified_phone_identity(start_hub):
    hub = await start_hub()
    update = load("message_with_contact.json")
    update["message"]["contact"].update(user_id=USER, phone_number="447911123456")
    await hub.post_update(update)
    (msg,) = await hub.wait_messages(1)
    (conv,) = await hub.conversations()
    resp = await hub.client.get(f"/api/v1/customers/{conv['customer']['id']}", headers=hub.agent)
    identities = {(i["kind"], i["address"], i["verified"]) for i in (await resp.json())["identities"]}
    assert ("phone", "+447911123456", True) in identities
    assert ("telegram", str(USER), False) in identities


async def test_someone_elses_contact_is_just_a_message(start_hub):
    hub = await start_hub()
    await hub.post_update(load("message_with_contact.json"))
    (msg,) = await hub.wait_messages(1)
    assert msg["text"] == "[contact John Smith 88005553535]"
    (conv,) = await hub.conversations()
    resp = await hub.client.get(f"/api/v1/customers/{conv['customer']['id']}", headers=hub.agent)
    assert [i["kind"] for i in (await resp.json())["identities"]] == ["telegram"]


async def test_start_with_a_link_code_links_the_chat_to_the_known_customer(start_hub, fake):
    hub = await start_hub()
    resp = await hub.client.post(
        "/api/v1/messages",
        json={"channel": "email", "external_id": "<order-17@shop.example>",
              "sender": {"address": "ana@example.com", "name": "Ana"}, "subject": "Order 17", "text": "Where is it?"},
        headers=hub.integration,
    )
    assert resp.status == 201, await resp.text()
    customer_id = (await resp.json())["customer_id"]
    resp = await hub.client.post(f"/api/v1/customers/{customer_id}/link-codes", headers=hub.agent)
    assert resp.status == 201
    code = (await resp.json())["code"]

    start = load("message.json")
    start["message"]["text"] = f"/start {code}"
    await hub.post_update(start)

    async def confirmed():
        return [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == USER]

    (call,) = await eventually(confirmed, what="the link confirmation")
    assert call.params["text"] == LINKED_TEXT
    resp = await hub.client.get(f"/api/v1/customers/{customer_id}", headers=hub.agent)
    customer = await resp.json()
    assert ("telegram", str(USER), True) in {(i["kind"], i["address"], i["verified"]) for i in customer["identities"]}
    # the chat continues her open email conversation: one conversation, on both channels
    (conv,) = customer["conversations"]
    assert conv["channel"] == "email" and await hub.conversations() == []
    messages = (await hub.conversation(conv["id"]))["messages"]
    assert [(m["channel"], m["text"]) for m in messages] == [("email", "Where is it?"), ("telegram", "/start"),
                                                             ("telegram", LINKED_TEXT)]


async def test_group_chat_only_messages_addressed_to_the_bot(start_hub, fake):
    hub = await start_hub()
    chat = {"id": -1001234567890, "title": "Shop fans", "type": "supergroup"}
    sender = load("message.json")["message"]["from"]
    bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "Shop Bot", "username": BOT_USERNAME}

    def group_message(update_id, message_id, text, **extra):
        return {"update_id": update_id, "message": {
            "message_id": message_id, "from": sender, "chat": chat, "date": 1700000000, "text": text, **extra}}

    updates = [
        group_message(1, 1, "anyone got the new catalogue?"),
        group_message(2, 2, "/help", entities=[{"type": "bot_command", "offset": 0, "length": 5}]),
        group_message(3, 3, f"@{BOT_USERNAME} my parcel is late", entities=[{"type": "mention", "offset": 0, "length": 12}]),
        group_message(4, 4, "/help@OtherBot", entities=[{"type": "bot_command", "offset": 0, "length": 14}]),
        group_message(5, 5, "thanks!", reply_to_message={"message_id": 900, "from": bot_user, "chat": chat, "date": 1700000000, "text": "hi"}),
        group_message(6, 6, "@SomeoneElse hello", entities=[{"type": "mention", "offset": 0, "length": 12}]),
    ]
    for update in updates:
        assert (await hub.post_update(update)).status == 200
    await hub.spool_settled(6)
    texts = sorted(m["text"] for m in await hub.messages())
    assert texts == sorted(["/help", f"@{BOT_USERNAME} my parcel is late", "thanks!"])
    (conv,) = await hub.conversations()
    out = await hub.reply(conv["id"], "We are on it.")
    await hub.delivery(conv["id"], out["id"], until=("sent",))
    (call,) = fake.calls_to("sendMessage")
    assert call.params["chat_id"] == chat["id"]  # the group, where the customer asked
    assert call.params["reply_parameters"]["message_id"] == 5  # so the group sees whom it answers


async def test_callback_query_is_stored_on_the_conversation_and_answered(start_hub, fake):
    hub = await start_hub()
    await hub.post_update(load("message.json"))
    await hub.wait_messages(1)
    (conv,) = await hub.conversations()
    out = await hub.reply(conv["id"], "Pick a delivery slot")
    await hub.delivery(conv["id"], out["id"], until=("sent",))
    query = {"update_id": 400001, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": load("message.json")["message"]["from"], "chat_instance": "-50959",
        "data": "slot:tomorrow", "message": {"message_id": 1001, "chat": {"id": USER, "type": "private"}, "date": 1700000000}}}
    await hub.post_update(query)
    await hub.post_update(query)
    system = await hub.wait_messages(1, direction="system")
    assert [m["text"] for m in system] == ["slot:tomorrow"]
    assert system[0]["external_id"] == "default:cb:4382bfdwdsb323b2d9"
    assert len(await hub.conversations()) == 1
    await eventually(lambda: _async(fake.calls_to("answerCallbackQuery")), what="answerCallbackQuery")
    assert fake.calls_to("answerCallbackQuery")[0].params["callback_query_id"] == "4382bfdwdsb323b2d9"


async def _async(value):
    return value


# --- sending -----------------------------------------------------------------------------------


LONG_TEXT = "\n\n".join(
    f"Paragraph {i}: " + " ".join(["Lieferung 📦 unterwegs, naïve café"] * 20) for i in range(40)
)


async def _one_conversation(hub) -> dict:
    await hub.post_update(load("message.json"))
    await hub.wait_messages(1)
    (conv,) = await hub.conversations()
    return conv


def _squash(text: str) -> str:
    return "".join(text.split())


async def test_long_reply_is_split_within_telegrams_limit(start_hub, fake):
    assert utf16_len(LONG_TEXT) > 3 * MAX_TEXT_UNITS
    hub = await start_hub()
    conv = await _one_conversation(hub)
    out = await hub.reply(conv["id"], LONG_TEXT)
    sent = await hub.delivery(conv["id"], out["id"], until=("sent",))
    calls = fake.calls_to("sendMessage")
    assert len(calls) == len(split_text(LONG_TEXT)) >= 4
    assert all(utf16_len(c.params["text"]) <= MAX_TEXT_UNITS for c in calls)
    assert all(c.params["text"].startswith("Paragraph") for c in calls)  # cut at paragraph breaks
    assert _squash("".join(c.params["text"] for c in calls)) == _squash(LONG_TEXT)
    assert "reply_parameters" in calls[0].params and all("reply_parameters" not in c.params for c in calls[1:])
    assert sent["external_id"] == f"default:{USER}:{1000 + len(calls)}"  # the last part's id


async def test_flood_control_part_way_resends_only_the_missing_parts(start_hub, fake):
    hub = await start_hub()
    conv = await _one_conversation(hub)
    fake.fail("sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1, after=1)
    out = await hub.reply(conv["id"], LONG_TEXT)
    await hub.delivery(conv["id"], out["id"], until=("sent",))
    parts = split_text(LONG_TEXT)
    texts = Counter(c.params["text"] for c in fake.calls_to("sendMessage"))
    assert texts == Counter(parts) + Counter([parts[1]])  # part 2 tried twice, nothing sent twice


async def test_retry_after_keeps_the_message_queued_until_then(start_hub, fake):
    hub = await start_hub()
    conv = await _one_conversation(hub)
    fake.fail("sendMessage", status=429, description="Too Many Requests: retry after 30", retry_after=30)
    before = clock.now()
    out = await hub.reply(conv["id"], "Soon.")

    async def retried_later():
        msg = next(m for m in (await hub.conversation(conv["id"]))["messages"] if m["id"] == out["id"])
        d = msg["delivery"]
        return d if d["state"] == "queued" and d["attempts"] == 1 else None

    delivery = await eventually(retried_later, what="a scheduled retry")
    next_at = datetime.fromisoformat(delivery["next_attempt_at"].replace("Z", "+00:00"))
    assert next_at >= before + timedelta(seconds=29)
    assert "30" in delivery["last_error"] and "flood" in delivery["last_error"]
    assert len(fake.calls_to("sendMessage")) == 1


async def test_a_user_who_blocked_the_bot_fails_for_good_with_the_reason(start_hub, fake):
    hub = await start_hub()
    conv = await _one_conversation(hub)
    fake.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    out = await hub.reply(conv["id"], "Hello?")
    msg = await hub.delivery(conv["id"], out["id"], until=("failed",))
    assert "bot was blocked by the user" in msg["delivery"]["last_error"]
    assert msg["delivery"]["attempts"] == 1


async def test_bad_request_fails_for_good_and_network_trouble_is_retried(start_hub, fake):
    hub = await start_hub()
    conv = await _one_conversation(hub)
    fake.fail("sendMessage", status=400, description="Bad Request: chat not found")
    out = await hub.reply(conv["id"], "One")
    msg = await hub.delivery(conv["id"], out["id"], until=("failed",))
    assert "chat not found" in msg["delivery"]["last_error"].lower()
    fake.fail("sendMessage", status=502, description="Bad Gateway")
    out = await hub.reply(conv["id"], "Two")
    await hub.delivery(conv["id"], out["id"], until=("sent",))
    assert [c.params["text"] for c in fake.calls_to("sendMessage")] == ["One", "Two", "Two"]


async def test_attachments_go_out_with_send_document(start_hub, fake):
    hub = await start_hub()
    pdf = b"%PDF-1.4 invoice " * 100
    delivery = await hub.channel.send(OutboundMessage(
        conversation_id=1, channel="telegram", recipient=str(USER), text="Your invoice",
        idempotency_key="message:test-doc", thread_key=f"default:{USER}",
        attachments=(Attachment("invoice-17.pdf", "application/pdf", data=pdf),),
    ))
    (text,) = fake.calls_to("sendMessage")
    (doc,) = fake.calls_to("sendDocument")
    assert text.params["text"] == "Your invoice" and doc.params["chat_id"] == USER
    assert doc.files["document"] == ("invoice-17.pdf", pdf)
    assert delivery.external_id == f"default:{USER}:1002"


async def test_a_conversation_of_an_unconfigured_bot_fails_for_good(start_hub):
    hub = await start_hub()
    from channels.base import PermanentFailure

    with pytest.raises(PermanentFailure, match="old_brand"):
        await hub.channel.send(OutboundMessage(
            conversation_id=1, channel="telegram", recipient=str(USER), text="x",
            idempotency_key="k", thread_key=f"old_brand:{USER}"))


# --- several bots --------------------------------------------------------------------------------


async def test_two_bots_keep_their_own_conversations(start_hub, fake):
    token_b = "220301654:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsbw"
    fake.add_bot(token_b, id=220301654, username="BrandBBot")
    hub = await start_hub(
        telegram_token=None,
        telegram_bots=[
            TelegramBotSettings(name="brand_a", token=TOKEN, webhook_secret="secret-a", api_url=fake.url),
            TelegramBotSettings(name="brand_b", token=token_b, webhook_secret="secret-b", api_url=fake.url),
        ],
    )
    webhooks = {c.token: c.params for c in fake.calls_to("setWebhook")}
    assert webhooks[TOKEN]["url"] == "https://hub.example/channels/telegram/brand_a/webhook"
    assert webhooks[token_b]["url"] == "https://hub.example/channels/telegram/brand_b/webhook"
    assert webhooks[token_b]["secret_token"] == "secret-b"

    update = load("message.json")
    assert (await hub.post_update(update, path="/channels/telegram/brand_b/webhook", secret="secret-a")).status == 403
    assert (await hub.post_update(update, path="/channels/telegram/webhook")).status == 404
    assert (await hub.post_update(update, path="/channels/telegram/brand_c/webhook", secret="secret-a")).status == 404
    assert (await hub.post_update(update, path="/channels/telegram/brand_a/webhook", secret="secret-a")).status == 200
    assert (await hub.post_update(update, path="/channels/telegram/brand_b/webhook", secret="secret-b")).status == 200
    messages = await hub.wait_messages(2)
    assert sorted(m["external_id"] for m in messages) == [f"brand_a:{USER}:11223", f"brand_b:{USER}:11223"]
    convs = await hub.conversations()
    assert len(convs) == 2
    assert len({c["customer"]["id"] for c in convs}) == 1  # one person, two brands' conversations

    for conv in convs:
        detail = await hub.conversation(conv["id"])
        brand = detail["messages"][0]["external_id"].split(":")[0]
        out = await hub.reply(conv["id"], f"Hello from {brand}")
        await hub.delivery(conv["id"], out["id"], until=("sent",))
    sent = {c.token: c.params["text"] for c in fake.calls_to("sendMessage")}
    assert sent == {TOKEN: "Hello from brand_a", token_b: "Hello from brand_b"}


# --- polling mode --------------------------------------------------------------------------------


async def test_polling_fetches_spools_and_moves_the_offset(start_hub, fake):
    fake.fail("getUpdates", status=502, description="Bad Gateway", times=2)  # backs off and goes on
    fake.queue_update(TOKEN, load("message.json"))
    fake.queue_update(TOKEN, load("message_from_channel.json"))
    hub = await start_hub(telegram_mode="polling", telegram_webhook_secret=None)
    (msg,) = await hub.wait_messages(1)
    assert fake.calls_to("deleteWebhook") and not fake.calls_to("setWebhook")
    assert fake.calls_to("deleteWebhook")[0].at < fake.calls_to("getUpdates")[0].at
    assert msg["text"] == "Hi, world!"
    # The webhook route is not mounted for a polling bot.
    assert (await hub.post_update(load("message.json"))).status == 404

    engine = hub.db()

    async def offset():
        state = await asyncio.to_thread(load_state, engine, "telegram", "offset:default")
        return state if state and state["offset"] == 100021 + 1 else None

    await eventually(offset, what="the saved offset")
    fake.queue_update(TOKEN, load("reply_message.json"))
    await hub.wait_messages(2)
    await eventually(lambda: _async(any(c.params.get("offset") == 100023 + 1 for c in fake.calls_to("getUpdates"))),
                     what="the offset confirming the last update")
    # The channel post was never spooled. (The spool marks items done in batches, just after.)
    await eventually(lambda: _async((counts(engine).get("done") == 2) or None), what="two spooled updates done")
    assert await asyncio.to_thread(counts, engine) == {"done": 2}
    engine.dispose()
    first = fake.calls_to("getUpdates")[0].params
    assert set(first["allowed_updates"]) == {"message", "edited_message", "callback_query"}


async def test_polling_resumes_from_the_saved_offset_after_a_restart(start_hub, fake):
    fake.queue_update(TOKEN, load("message.json"))
    hub = await start_hub(telegram_mode="polling", telegram_webhook_secret=None)
    await hub.wait_messages(1)
    await hub.client.close()
    calls_before = len(fake.calls_to("getUpdates"))
    fake.queue_update(TOKEN, load("reply_message.json"))
    hub2 = await start_hub(telegram_mode="polling", telegram_webhook_secret=None)
    await hub2.wait_messages(2)
    resumed = fake.calls_to("getUpdates")[calls_before].params
    assert resumed["offset"] == 100003 + 1
    assert len(await hub2.messages()) == 2


async def test_polling_stops_cleanly(start_hub, fake):
    hub = await start_hub(telegram_mode="polling", telegram_webhook_secret=None)
    await eventually(lambda: _async(fake.calls_to("getUpdates")), what="a long poll")
    channel = hub.channel
    await asyncio.wait_for(hub.client.close(), timeout=10)
    assert all(bot.poller is None for bot in channel.bots.values())


# --- configuration ---------------------------------------------------------------------------------


async def test_webhook_mode_without_a_secret_is_refused_at_startup(settings, fake):
    bad = settings.model_copy(update=dict(telegram_token=TOKEN, telegram_webhook_secret=None, telegram_api_url=fake.url))
    with pytest.raises(TelegramConfigError, match="no webhook secret"):
        create_app(bad)


def test_configuration_errors_say_what_to_change(tmp_path):
    from hub.config.settings import Settings

    assert from_settings(Settings(data_dir=tmp_path)) is None
    with pytest.raises(TelegramConfigError, match="unique"):
        from_settings(Settings(data_dir=tmp_path, telegram_bots=[
            TelegramBotSettings(name="a", token="1:x", mode="polling"), TelegramBotSettings(name="a", token="2:x", mode="polling")]))
    with pytest.raises(TelegramConfigError, match="letters"):
        from_settings(Settings(data_dir=tmp_path, telegram_bots=[TelegramBotSettings(name="a:b", token="1:x", mode="polling")]))
    with pytest.raises(TelegramConfigError, match="same token"):
        from_settings(Settings(data_dir=tmp_path, telegram_bots=[
            TelegramBotSettings(name="a", token="1:x", mode="polling"), TelegramBotSettings(name="b", token="1:x", mode="polling")]))


async def test_a_failing_set_webhook_is_logged_and_the_hub_runs_on(start_hub, fake, caplog):
    fake.fail("setWebhook", status=500, description="Internal Server Error")
    hub = await start_hub()
    assert "setWebhook" in caplog.text
    assert (await hub.post_update(load("message.json"))).status == 200
    await hub.wait_messages(1)


# --- splitting, unit ------------------------------------------------------------------------------


def test_split_short_text_is_one_part():
    assert split_text("  hello  ") == ["hello"]
    assert split_text("   ") == []


def test_split_counts_utf16_units_and_never_breaks_a_surrogate_pair():
    text = "😀" * 3000  # 6000 UTF-16 units, no spaces anywhere
    parts = split_text(text)
    assert [utf16_len(p) for p in parts] == [4096, 6000 - 4096]
    assert "".join(parts) == text
    for part in parts:
        part.encode("utf-16-le").decode("utf-16-le")  # whole pairs only
        part.encode("utf-8")  # no lone surrogates


def test_split_prefers_paragraphs_then_lines_then_spaces():
    para = "a" * 3000
    assert split_text(para + "\n\n" + para) == [para, para]
    line = "b " * 1500
    parts = split_text(("x" * 2000 + "\n") * 3)
    assert parts == ["x" * 2000 + "\n" + "x" * 2000, "x" * 2000]
    parts = split_text(line * 3)
    assert all(len(p) <= 4096 and not p.endswith(" ") for p in parts)
    assert _squash("".join(parts)) == _squash(line * 3)


def test_split_keeps_combining_marks_with_their_letter():
    text = "e\u0301" * 3000  # é as e + combining acute, no spaces
    parts = split_text(text, limit=4096)
    assert all(not unicode_starts_with_mark(p) for p in parts)
    assert "".join(parts) == text


def unicode_starts_with_mark(text: str) -> bool:
    import unicodedata

    return bool(text) and unicodedata.combining(text[0]) != 0


async def test_an_unreachable_telegram_neither_blocks_the_hub_nor_loses_replies(start_hub, fake):
    hub = await start_hub(telegram_api_url="http://127.0.0.1:9")  # nothing listens there
    assert (await hub.post_update(load("message.json"))).status == 200
    await hub.wait_messages(1)  # a private chat needs nothing from Telegram to be stored
    (conv,) = await hub.conversations()
    out = await hub.reply(conv["id"], "Are you there?")

    async def retrying():
        msg = next(m for m in (await hub.conversation(conv["id"]))["messages"] if m["id"] == out["id"])
        return msg if msg["delivery"]["state"] == "queued" and msg["delivery"]["attempts"] >= 1 else None

    msg = await eventually(retrying, what="a retried delivery")
    assert msg["delivery"]["last_error"].startswith("sendMessage:")

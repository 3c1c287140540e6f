"""channels.telegram.parse over every real update in the fixtures, and over cases built beside them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from channels.telegram.parse import (
    MAX_ENTITIES,
    MalformedUpdate,
    addressed_to_bot,
    parse_update,
    parse_update_strict,
    utf16_slice,
)
from hub.contract.errors import RejectedInput
from hub.contract.messages import Sender
from tests.conftest import FIXTURES

UPDATES = FIXTURES / "telegram" / "updates"
ALL_UPDATES = sorted(UPDATES.glob("*.json"))
USER_ID = 12345678
BOT_ID = 424242
BOT_USERNAME = "ShopHelpBot"

# No customer speaks in these: a channel's post, payment queries, chat migrations (service messages).
EXPECTED_NONE = {
    "message_from_channel.json",
    "pre_checkout_query.json",
    "shipping_query.json",
    "message_with_migrate_from_chat_id.json",
    "message_with_migrate_to_chat_id.json",
}


def load(name: str) -> dict:
    return json.loads((UPDATES / name).read_text(encoding="utf-8"))


def group(update: dict, chat_type: str = "group") -> dict:
    """The same update as if written in a group chat."""
    update = copy.deepcopy(update)
    update["message"]["chat"] = {"id": -100123, "title": "Shop fans", "type": chat_type}
    return update


def test_the_fixtures_are_there():
    assert len(ALL_UPDATES) >= 25


@pytest.mark.parametrize("path", ALL_UPDATES, ids=lambda p: p.name)
def test_every_fixture_update_parses_without_raising(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    msg = parse_update(data, bot="default")
    if path.name in EXPECTED_NONE:
        assert msg is None
        return
    assert msg is not None
    assert msg.channel == "telegram"
    assert msg.sender == Sender(str(USER_ID), "FirstName LastName", kind="telegram")
    assert msg.thread.thread_key == f"default:{USER_ID}"
    body = data.get("message") or data.get("edited_message")
    assert msg.external_id == f"default:{USER_ID}:{body['message_id']}"
    assert msg.text.strip()
    assert msg.metadata["update_id"] == data["update_id"]
    assert msg.metadata["chat_type"] == "private"
    json.dumps(msg.metadata)  # JSON-safe, as the hub stores it
    # The same update through the strict entry point gives the same answer.
    assert parse_update_strict(data, bot="default") == msg


@pytest.mark.parametrize("path", ALL_UPDATES, ids=lambda p: p.name)
def test_every_fixture_update_in_a_group_is_ignored_unless_addressed(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    if "message" not in data:
        return
    assert parse_update(group(data), bot="b", bot_username=BOT_USERNAME, bot_id=BOT_ID) is None


def test_text_message():
    msg = parse_update(load("message.json"), bot="shop")
    assert msg.text == "Hi, world!"
    assert msg.kind == "message"
    assert msg.external_id == f"shop:{USER_ID}:11223"
    assert msg.thread.thread_key == f"shop:{USER_ID}"
    assert msg.thread.in_reply_to == ()
    assert msg.sent_at == datetime.fromtimestamp(1508709711, tz=UTC)
    assert msg.metadata == {
        "bot": "shop", "chat_id": USER_ID, "chat_type": "private", "update_id": 100003, "message_id": 11223,
        "username": "username", "language_code": "ru",
    }
    assert msg.link_code is None and msg.verified_identities == () and msg.attachments == ()


def test_photo_takes_the_largest_size_and_its_caption():
    data = load("message_with_photo.json")
    data["message"]["photo"] = [
        {"file_id": "small", "file_unique_id": "s", "file_size": 1101, "width": 90, "height": 51},
        {"file_id": "large", "file_unique_id": "l", "file_size": 60000, "width": 1280, "height": 720},
        {"file_id": "medium", "file_unique_id": "m", "file_size": 9000, "width": 320, "height": 180},
    ]
    msg = parse_update(data)
    assert msg.text == "photo description"
    assert msg.metadata["files"] == [
        {"kind": "photo", "file_id": "large", "file_unique_id": "l", "file_name": "photo_l.jpg",
         "mime_type": "image/jpeg", "file_size": 60000}
    ]


def test_photo_fixture_without_caption_is_labelled():
    data = load("message_with_media_group.json")
    msg = parse_update(data)
    assert msg.text == "[photo]"
    assert msg.metadata["media_group_id"] == "12182749320567362"
    assert len(msg.metadata["files"]) == 1


@pytest.mark.parametrize(
    "name, text, kind, file_name, mime",
    [
        ("message_with_document.json", "Read my document", "document", "test.docx",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("message_with_voice.json", "[voice message 1s]", "voice", "voice_file.ogg", "audio/ogg"),
        ("message_with_video_note.json", "[video message 4s]", "video_note", "video_note_file.mp4", "video/mp4"),
        ("message_with_audio.json", "This is my favourite song", "audio", "audio_file.mp3", "audio/mpeg3"),
        ("message_with_video.json", "description", "video", "video_file.mp4", "video/quicktime"),
    ],
)
def test_files_become_references_for_the_channel_to_download(name, text, kind, file_name, mime):
    data = load(name)
    msg = parse_update(data)
    assert msg.text == text
    (ref,) = msg.metadata["files"]
    body = data["message"][kind]
    assert ref["kind"] == kind and ref["file_id"] == body["file_id"]
    assert ref["file_name"] == file_name and ref["mime_type"] == mime
    assert ref["file_size"] == body["file_size"]


def test_audio_without_caption_names_the_song():
    data = load("message_with_audio.json")
    del data["message"]["caption"]
    assert parse_update(data).text == "[audio The Best Singer – The Best Song]"


def test_sticker_is_text_with_its_emoji():
    msg = parse_update(load("message_with_sticker.json"))
    assert msg.text == "[sticker 🛠]"
    assert "files" not in msg.metadata
    assert msg.metadata["sticker"]["set_name"] == "StickerSet"


def test_reply_names_the_message_it_answers():
    msg = parse_update(load("reply_message.json"), bot="shop")
    assert msg.text == "Reply to quoted message"
    assert msg.thread.in_reply_to == (f"shop:{USER_ID}:11223",)
    assert msg.metadata["reply_to_message_id"] == 11223


def test_forward_is_kept_in_metadata():
    msg = parse_update(load("forwarded_message.json"))
    assert msg.text.startswith("Forwarded text")
    assert msg.metadata["forwarded"] is True
    assert msg.metadata["forward_from_chat"]["id"] == USER_ID
    assert msg.metadata["forward_from_message_id"] == 123
    assert msg.metadata["forward_date"] == 1522749037


def test_forward_origin_of_newer_clients():
    data = load("message.json")
    data["message"]["forward_origin"] = {"type": "hidden_user", "sender_user_name": "Someone", "date": 1700000000}
    msg = parse_update(data)
    assert msg.metadata["forward_origin"]["sender_user_name"] == "Someone"
    assert msg.metadata["forwarded"] is True


def test_edit_keeps_the_external_id_and_uses_the_edit_date():
    msg = parse_update(load("edited_message.json"))
    assert msg.kind == "edit"
    assert msg.external_id == f"default:{USER_ID}:12345"
    assert msg.text == "hi there (edited)"
    assert msg.sent_at == datetime.fromtimestamp(1508825379, tz=UTC)


def test_someone_elses_contact_is_only_text():
    msg = parse_update(load("message_with_contact.json"))
    assert msg.text == "[contact John Smith 88005553535]"
    assert msg.verified_identities == ()
    assert msg.metadata["contact"] == {"phone_number": "88005553535", "first_name": "John", "last_name": "Smith"}


def test_own_contact_is_a_verified_phone():
    data = load("message_with_contact.json")
    data["message"]["contact"].update(user_id=USER_ID, phone_number="447911123456", first_name="FirstName", last_name="LastName")
    msg = parse_update(data)
    assert msg.verified_identities == (Sender("+447911123456", "FirstName LastName", kind="phone"),)


def test_own_contact_with_an_impossible_number_is_not_verified():
    data = load("message_with_contact.json")
    data["message"]["contact"].update(user_id=USER_ID, phone_number="12")
    msg = parse_update(data)
    assert msg.verified_identities == ()
    assert msg.metadata["contact_unverified_reason"]


def test_location_and_venue():
    loc = parse_update(load("message_with_location.json"))
    assert loc.text == "[location 50.693416,30.624605]"
    assert loc.metadata["location"] == {"latitude": 50.693416, "longitude": 30.624605}
    venue = parse_update(load("message_with_venue.json"))
    assert venue.text == "[venue Venue Name, Venue Address 50.693416,30.624605]"
    assert venue.metadata["venue"]["title"] == "Venue Name"
    assert venue.metadata["location"]["latitude"] == 50.693416


def test_dice_game_invoice_payment_are_labelled():
    assert parse_update(load("message_with_dice.json")).text == "[dice 🎲 6]"
    assert parse_update(load("message_with_game.json")).text == "[game Karate Kido]"
    assert parse_update(load("message_with_invoice.json")).text == "[invoice Working Time Machine]"
    payment = parse_update(load("message_with_successful_payment.json"))
    assert payment.text == "[payment 62.50 USD]"
    assert payment.metadata["payment"]["invoice_payload"] == "HAPPY FRIDAYS COUPON"


@pytest.mark.parametrize("text, code", [("/start AbC_12-x", "AbC_12-x"), ("/start@ShopHelpBot tok3n", "tok3n")])
def test_start_with_a_deep_link_payload_carries_the_link_code(text, code):
    data = load("message.json")
    data["message"]["text"] = text
    msg = parse_update(data, bot_username=BOT_USERNAME)
    assert msg.link_code == code
    assert msg.text == "/start"


@pytest.mark.parametrize("text", ["/start", "/start two words", "/startle x", "/start " + "x" * 65])
def test_start_without_a_valid_payload_is_a_plain_message(text):
    data = load("message.json")
    data["message"]["text"] = text
    msg = parse_update(data)
    assert msg.link_code is None
    assert msg.text == text


def callback_update(data: str | None = "order:42", with_message: bool = True) -> dict:
    query: dict = {
        "id": "4382bfdwdsb323b2d9",
        "from": load("message.json")["message"]["from"],
        "chat_instance": "-5095925290637389",
    }
    if data is not None:
        query["data"] = data
    if with_message:
        query["message"] = {"message_id": 77, "chat": {"id": USER_ID, "type": "private"}, "date": 1508709800, "text": "Pick one"}
    else:
        query["inline_message_id"] = "AAAAAH"
    return {"update_id": 200001, "callback_query": query}


def test_callback_query_is_a_callback_on_the_chat():
    msg = parse_update(callback_update(), bot="shop")
    assert msg.kind == "callback"
    assert msg.text == "order:42"
    assert msg.external_id == "shop:cb:4382bfdwdsb323b2d9"
    assert msg.thread.thread_key == f"shop:{USER_ID}"
    assert msg.thread.in_reply_to == (f"shop:{USER_ID}:77",)
    assert msg.sender.address == str(USER_ID)
    assert msg.automated


def test_callback_query_on_an_inline_message_has_no_chat():
    msg = parse_update(callback_update(data=None, with_message=False))
    assert msg.text == "[button]"
    assert msg.thread.thread_key is None
    assert msg.metadata["inline_message_id"] == "AAAAAH"


# --- groups ---------------------------------------------------------------------------------------


def group_text(text: str, entities: list | None = None, chat_type: str = "group", reply_from: dict | None = None) -> dict:
    data = group(load("message.json"), chat_type)
    data["message"]["text"] = text
    if entities is not None:
        data["message"]["entities"] = entities
    if reply_from is not None:
        data["message"]["reply_to_message"] = {
            "message_id": 5, "from": reply_from, "chat": data["message"]["chat"], "date": 1508709000, "text": "earlier"
        }
    return data


@pytest.mark.parametrize(
    "text, entities, expected",
    [
        ("just chatting", None, False),
        ("/help", [{"type": "bot_command", "offset": 0, "length": 5}], True),
        ("/help@ShopHelpBot", [{"type": "bot_command", "offset": 0, "length": 17}], True),
        ("/help@shophelpbot", [{"type": "bot_command", "offset": 0, "length": 17}], True),
        ("/help@OtherBot", [{"type": "bot_command", "offset": 0, "length": 14}], False),
        ("/help", None, True),
        ("/help@OtherBot", None, False),
        ("hey @ShopHelpBot where is my order", [{"type": "mention", "offset": 4, "length": 12}], True),
        ("hey @OtherBot where is my order", [{"type": "mention", "offset": 4, "length": 9}], False),
        ("hey @ShopHelpBot where is my order", None, True),
        ("hey @ShopHelpBotter", None, False),
        # Offsets count UTF-16 code units: the emoji before the mention counts twice.
        ("😀 @ShopHelpBot hi", [{"type": "mention", "offset": 3, "length": 12}], True),
        ("hey bot", [{"type": "text_mention", "offset": 4, "length": 3, "user": {"id": BOT_ID, "is_bot": True, "first_name": "Shop"}}], True),
        ("see https://x.example", [{"type": "url", "offset": 4, "length": 17}], False),
    ],
)
@pytest.mark.parametrize("chat_type", ["group", "supergroup"])
def test_group_messages_only_when_addressed_to_the_bot(text, entities, expected, chat_type):
    data = group_text(text, entities, chat_type)
    msg = parse_update(data, bot="shop", bot_username=BOT_USERNAME, bot_id=BOT_ID)
    assert (msg is not None) is expected
    if msg is not None:
        assert msg.thread.thread_key == "shop:-100123"
        assert msg.external_id == "shop:-100123:11223"
        assert msg.sender.address == str(USER_ID)
        assert msg.metadata["chat_title"] == "Shop fans"


def test_group_reply_to_the_bot_is_addressed_to_it():
    bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "Shop", "username": BOT_USERNAME}
    other = {"id": 999, "is_bot": False, "first_name": "Zed"}
    assert parse_update(group_text("thanks", reply_from=bot_user), bot_username=BOT_USERNAME, bot_id=BOT_ID) is not None
    assert parse_update(group_text("thanks", reply_from=other), bot_username=BOT_USERNAME, bot_id=BOT_ID) is None


def test_group_photo_with_a_caption_mention():
    data = group(load("message_with_photo.json"))
    data["message"]["caption"] = "@ShopHelpBot broken on arrival"
    data["message"]["caption_entities"] = [{"type": "mention", "offset": 0, "length": 12}]
    msg = parse_update(data, bot_username=BOT_USERNAME, bot_id=BOT_ID)
    assert msg is not None and msg.metadata["files"]


def test_utf16_slice():
    assert utf16_slice("😀 @Bot", 3, 4) == "@Bot"
    assert utf16_slice("abc", None, 1) == ""
    assert addressed_to_bot({"text": 5}, "x", 1) is False


# --- what is not a customer's message -------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "my_chat_member": {"chat": {"id": 1, "type": "private"}, "from": {"id": 1}, "date": 1}},
        {"update_id": 2, "chat_join_request": {"chat": {"id": -1, "type": "supergroup"}, "from": {"id": 1}}},
        {"update_id": 3, "message_reaction": {"chat": {"id": 1, "type": "private"}, "message_id": 2}},
        {"update_id": 4, "poll": {"id": "1", "question": "?"}},
        {"update_id": 5, "edited_channel_post": {"message_id": 1, "chat": {"id": -1, "type": "channel"}, "date": 1, "text": "x"}},
        {"update_id": 6, "some_kind_from_the_future": {"x": 1}},
        {"update_id": 7},
        {"update_id": 8, "message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "date": 1, "text": "no sender"}},
        {"update_id": 9, "message": {"message_id": 1, "from": {"id": 5, "is_bot": True, "first_name": "B"},
                                     "chat": {"id": 1, "type": "private"}, "date": 1, "text": "a bot"}},
        {"update_id": 10, "message": {"message_id": 1, "from": {"id": 5, "first_name": "A"},
                                      "chat": {"id": 1, "type": "private"}, "date": 1, "new_chat_title": "x"}},
    ],
)
def test_updates_without_a_customer_message_are_none(update):
    assert parse_update(update) is None


@pytest.mark.parametrize(
    "update",
    [None, [], "text", 5, {"update_id": 1, "message": "x"}, {"update_id": 1, "message": {"text": "no chat"}},
     {"update_id": 1, "message": {"message_id": "1", "chat": {"id": 1}}}, {"update_id": 1, "callback_query": {"from": {"id": 1}}},
     {"update_id": 1, "callback_query": {"id": "x", "from": "nobody"}}],
)
def test_malformed_updates_are_none_and_strictly_an_error(update):
    assert parse_update(update) is None
    if isinstance(update, dict) and any(k in update for k in ("message", "callback_query")):
        with pytest.raises(MalformedUpdate):
            parse_update_strict(update)


def test_an_unknown_kind_of_content_is_kept_as_a_placeholder():
    data = load("message.json")
    del data["message"]["text"]
    data["message"]["hologram"] = {"id": 1}
    msg = parse_update(data)
    assert msg.text == "[a message of a kind this hub cannot show]"
    assert msg.metadata["content_keys"] == ["hologram"]


# --- forged updates (the webhook is public): linear work, safe output ------------------------------


def test_malformed_update_is_the_documented_rejection():
    assert issubclass(MalformedUpdate, RejectedInput) and issubclass(MalformedUpdate, ValueError)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    for update in ({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "from": {"id": 2}, "date": 1,
                                                 "document": {"file_name": deep}}},
                   {"update_id": 1, "callback_query": {"id": {"an": "object"}, "from": {"id": 1}}}):
        with pytest.raises(MalformedUpdate):
            parse_update_strict(update)
        assert parse_update(update) is None


def test_a_text_of_megabytes_with_nul_and_lone_surrogates_is_cut_and_made_safe():
    data = load("message.json")
    data["message"]["text"] = "Where is my order?\x00\ud800 " * 100_000  # 2.1 million characters
    data["message"]["from"]["first_name"] = "Ana\x00\udcff"
    msg = parse_update(data)
    assert len(msg.text) == 1_000_000 and msg.metadata["truncated"] is True
    # As the email parser does: NUL removed, a lone surrogate replaced by "?".
    assert "\x00" not in msg.text and msg.text.encode("utf-8") and msg.text.startswith("Where is my order?? ")
    assert msg.sender.name == "Ana? LastName"
    json.dumps(msg.metadata, ensure_ascii=False).encode("utf-8")


def test_thousands_of_entities_in_a_group_are_read_once():
    """The text is encoded to UTF-16 once for all entities (it was once per entity: quadratic), and
    at most MAX_ENTITIES entities are looked at."""
    text = "@ShopHelpBot where is my order? " * 20_000
    mention = {"type": "mention", "offset": 0, "length": 12}
    bold = {"type": "bold", "offset": 13, "length": 5}
    msg = {"message_id": 1, "date": 1, "chat": {"id": -100123, "type": "group"}, "from": {"id": 1, "first_name": "A"}, "text": text}
    assert addressed_to_bot({**msg, "entities": [mention] + [bold] * 200_000}, BOT_USERNAME, BOT_ID)
    assert not addressed_to_bot({**msg, "entities": [bold] * MAX_ENTITIES + [mention]}, BOT_USERNAME, BOT_ID)
    assert parse_update({"update_id": 1, "message": {**msg, "entities": [bold] * 200_000 + [mention]}},
                        bot_username=BOT_USERNAME, bot_id=BOT_ID) is None


def test_a_deep_forward_origin_is_stored_six_levels_deep():
    origin: dict = {"type": "user", "sender_user": {"id": 1, "first_name": "Bo"}, "date": 1}
    for _ in range(5_000):
        origin = {"type": "user", "sender_user": origin}
    data = load("message.json")
    data["message"]["forward_origin"] = origin
    stored = parse_update(data).metadata["forward_origin"]
    depth = 0
    while isinstance(stored, dict):
        stored, depth = stored.get("sender_user"), depth + 1
    assert depth == 5


def test_a_long_text_starting_with_start_is_no_deep_link():
    data = load("message.json")
    data["message"]["text"] = "/start" + " " * 500_000 + "x" * 64
    msg = parse_update(data)
    assert msg.link_code is None and msg.text.startswith("/start ")

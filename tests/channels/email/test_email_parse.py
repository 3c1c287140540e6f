"""channels.email.parse.parse(): raw bytes -> InboundMessage, over every public fixture email and
over messages built here for what the fixtures lack (charsets, flags, plus-address tokens)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from channels.email.charsets import decode
from channels.email.parse import MAX_HEADER_CHARS, MAX_LISTED_ADDRESSES, MAX_TEXT, _unflow, _unflow_lines, parse
from hub.contract.errors import RejectedInput
from hub.contract.messages import AUTOMATED_FLAGS, InboundMessage
from hub.ingest.pipeline import ingest, ingest_many, validate
from hub.store.models import Conversation, Message
from tests.conftest import FIXTURES
from tests.support.email_corpus import NOT_AN_EMAIL, fixture_emails

EMAIL = FIXTURES / "email"
OWN = ("support@shop.example",)

def fx(relative: str) -> bytes:
    return (EMAIL / relative).read_bytes()


def build(body: str = "Where is my order?", *, charset: str = "utf-8", subtype: str = "plain", **headers) -> bytes:
    msg = EmailMessage()
    msg["From"] = headers.pop("from_", "Ana Lima <ana@example.com>")
    msg["To"] = headers.pop("to", "support@shop.example")
    msg["Subject"] = headers.pop("subject", "Order 1234")
    msg["Message-ID"] = headers.pop("message_id", "<m1@example.com>")
    msg["Date"] = headers.pop("date", "Tue, 01 Mar 2011 18:02:00 +0100")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body, subtype=subtype, charset=charset)
    return msg.as_bytes(policy=SMTP)


def raw_mail(head: str, body: bytes) -> bytes:
    return head.strip("\n").replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body


# --- every fixture ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", fixture_emails(), ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_fixture_email_parses(path):
    raw = path.read_bytes()
    if path.name in NOT_AN_EMAIL:
        with pytest.raises(RejectedInput):
            parse(raw, own_addresses=OWN)
        return
    msg = parse(raw, own_addresses=OWN)
    assert isinstance(msg, InboundMessage) and msg.channel == "email"
    assert msg.external_id.startswith("<") and msg.external_id.endswith(">") and len(msg.external_id) <= 500
    assert msg.raw == raw
    assert msg.sent_at is None or msg.sent_at.tzinfo is not None
    assert set(msg.flags) <= AUTOMATED_FLAGS
    json.dumps(msg.metadata)
    for value in (msg.text, msg.subject or "", msg.html or "", msg.sender.address, msg.sender.name or ""):
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates
    for att in msg.attachments:
        assert isinstance(att.data, bytes) and att.filename and "/" in att.content_type
    assert all(i.startswith("<") for i in msg.thread.in_reply_to)
    if msg.sender.address:
        validate(msg)  # the hub accepts it as it is


def test_every_fixture_email_is_stored(engine, tmp_path):
    """The whole corpus through the hub's ingest, in batches as the receiver hands it over."""
    from hub.store.blobs import BlobStore

    msgs = []
    for path in fixture_emails():
        if path.name not in NOT_AN_EMAIL:
            msg = parse(path.read_bytes(), own_addresses=OWN)
            if msg.sender.address:
                msgs.append(msg)
    results = ingest_many(engine, msgs, blobs=BlobStore(tmp_path / "blobs"))
    rejected = [(m.external_id, r) for m, r in zip(msgs, results) if isinstance(r, Exception)]
    assert rejected == []


# --- headers ------------------------------------------------------------------------------------


def test_gb2312_subjects_are_decoded_as_gb18030():
    msg = parse(fx("mail-parser/mail_test_12"))
    assert msg.subject == "代开各地增值税发票"
    assert msg.sender.name == "张先生"
    assert "增值税发票" in msg.text
    # A GB2312 label on GBK text, cut across two encoded words: stdlib decoding shows "�拢�".
    spam = parse(fx("mail-parser/mail_test_9"))
    assert spam.subject is not None and "\ufffd" not in spam.subject
    assert spam.subject.startswith("我把镜头拉近些，你们看看这个是什么")


def test_gbk_only_character_under_a_gb2312_label():
    word = base64.b64encode("喆的订单".encode("gbk")).decode()  # 喆 is in GBK, not GB2312
    raw = raw_mail(f"From: a@example.com\nSubject: =?gb2312?B?{word}?=\nMessage-ID: <g@x>", b"hi")
    assert parse(raw).subject == "喆的订单"


def test_iso_2022_jp_and_shift_jis_bodies():
    jis = parse(fx("mikel-mail/multi_charset/japanese_iso_2022.eml"))
    assert (jis.subject, jis.text) == ("まみむめも", "すみません。")
    sjis = parse(fx("mikel-mail/multi_charset/japanese_shift_jis.eml"))
    assert "このメールはテスト用のメールです。" in sjis.text
    # Shift_JIS as Windows sends it (cp932): NEC special characters and half-width katakana.
    raw = raw_mail(
        "From: a@example.com\nSubject: test\nMessage-ID: <s@x>\nContent-Type: text/plain; charset=Shift_JIS\n"
        "Content-Transfer-Encoding: 8bit",
        "注文番号①のｶﾀｶﾅ".encode("cp932"),
    )
    msg = parse(raw)
    assert msg.text == "注文番号①のｶﾀｶﾅ" and "charset_fallback" not in msg.metadata


def test_korean_ks_c_5601_body():
    assert parse(fx("mikel-mail/multi_charset/ks_c_5601-1987.eml")).text == "스티해"
    raw = build("주문이 아직 도착하지 않았습니다", charset="euc-kr", subject="주문 문의")
    assert parse(raw).text == "주문이 아직 도착하지 않았습니다"


def test_koi8_r_body_and_subject():
    raw = build("Где мой заказ? Номер 1234.", charset="koi8-r", subject="Заказ 1234")
    assert b"koi8-r" in raw.lower()
    msg = parse(raw)
    assert (msg.subject, msg.text) == ("Заказ 1234", "Где мой заказ? Номер 1234.")


def test_big5_and_windows_1251():
    assert parse(build("我的訂單在哪裡？", charset="big5")).text == "我的訂單在哪裡？"
    assert parse(build("Здравствуйте, где заказ?", charset="windows-1251")).text == "Здравствуйте, где заказ?"


def test_mislabelled_charsets():
    text = "Grüße aus Köln, où est ma commande ? Заказ №5"
    utf8_as_latin1 = raw_mail(
        "From: a@example.com\nMessage-ID: <l@x>\nContent-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: 8bit",
        text.encode("utf-8"),
    )
    msg = parse(utf8_as_latin1)
    assert msg.text == text and msg.metadata["charset_fallback"] is True
    unknown = raw_mail(
        "From: a@example.com\nMessage-ID: <u@x>\nContent-Type: text/plain; charset=unknown-8bit\n"
        "Content-Transfer-Encoding: 8bit",
        text.encode("utf-8"),
    )
    assert parse(unknown).text == text
    latin1_as_utf8 = raw_mail(
        "From: a@example.com\nMessage-ID: <w@x>\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit",
        "Grüße aus Köln, très bien.".encode("latin-1"),
    )
    assert parse(latin1_as_utf8).text == "Grüße aus Köln, très bien."
    no_label = raw_mail("From: a@example.com\nMessage-ID: <n@x>", "Привет, как дела? Это тест.".encode("cp1251"))
    assert parse(no_label).text == "Привет, как дела? Это тест."


def test_unlabelled_short_texts_are_not_read_as_asian_charsets():
    # Charset detection on short text once read KOI8-R as Shift_JIS and latin-1 as cp1006.
    koi8 = raw_mail("From: a@example.com\nMessage-ID: <k@x>", "Привет, как дела? Это тестовое сообщение.".encode("koi8-r"))
    assert parse(koi8).text == "Привет, как дела? Это тестовое сообщение."
    latin1 = raw_mail("From: a@example.com\nMessage-ID: <l1@x>", "Grüße, très bien".encode("latin-1"))
    assert parse(latin1).text == "Grüße, très bien"


def test_other_renderings_in_an_alternative_are_not_attachments():
    head = 'From: a@example.com\nMessage-ID: <amp@x>\nContent-Type: multipart/alternative; boundary="A"'
    body = (
        b"--A\r\nContent-Type: text/plain\r\n\r\nplain version\r\n"
        b"--A\r\nContent-Type: text/x-amp-html\r\n\r\n<html amp4email>amp</html>\r\n"
        b"--A\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n--A--\r\n"
    )
    msg = parse(raw_mail(head, body))
    assert (msg.text, msg.html, msg.attachments) == ("plain version", "<p>html version</p>", ())


def test_unknown_charset_in_encoded_word_and_raw_8bit_headers():
    word = base64.b64encode("Señor Pérez".encode()).decode()
    raw = raw_mail(f"From: =?x-unknown?B?{word}?= <p@example.com>\nSubject: =?bogus?Q?caf=C3=A9?=\nMessage-ID: <h@x>", b"hi")
    msg = parse(raw)
    assert (msg.sender.name, msg.subject) == ("Señor Pérez", "café")
    assert parse(fx("flanker/from-encoding.eml")).sender.name == "Ingo Lütkebohle"  # raw latin-1
    utf8 = parse(fx("mikel-mail/rfc6532/utf8_headers.eml"))  # RFC 6532 raw UTF-8
    assert (utf8.sender.name, utf8.sender.address, utf8.subject) == ("Jöhn Doe", "jdöe@mächine.example", "Säying Hello")


def test_encoded_comma_in_a_display_name_does_not_split_the_address():
    msg = parse(fx("mail-parser/mail_test_18"))
    assert (msg.sender.name, msg.sender.address) == ("LastßlName, FirstName", "comma.name@example.com")
    assert msg.metadata["cc"] == ["simple@example.net", "john.doe@example.com"]


def test_bad_date_header_gives_no_sent_at():
    assert parse(fx("mikel-mail/error_emails/bad_date_header.eml")).sent_at is None
    msg = parse(build(date="Tue, 01 Mar 2011 18:02:00 +0100"))
    assert msg.sent_at == datetime.fromisoformat("2011-03-01T18:02:00+01:00")
    assert parse(build(date="yesterday-ish")).sent_at is None


def test_message_ids():
    msg = parse(raw_mail("From: a@example.com\nMessage-ID:   < abc@x.example >  ", b"hi"))
    assert msg.external_id == "<abc@x.example>"
    no_id = raw_mail("From: a@example.com\nSubject: s", b"hi")
    first, second = parse(no_id), parse(no_id)
    assert first.external_id == second.external_id
    assert first.external_id.startswith("<sha256-") and first.external_id.endswith("@servicehub.invalid>")
    assert parse(no_id + b"!").external_id != first.external_id


def test_thread_hints_in_reply_to_then_references_newest_first():
    raw = raw_mail("From: a@example.com\nMessage-ID: <d@x>\nIn-Reply-To: <c@x>\nReferences: <a@x> <b@x>\n <c@x>", b"hi")
    assert parse(raw).thread.in_reply_to == ("<c@x>", "<b@x>", "<a@x>")


@pytest.mark.parametrize(
    "header, expected",
    [
        ("To: support+c123@shop.example", 123),
        ("To: Shop <SUPPORT+C77@Shop.Example>", 77),
        ("To: other@example.com\nCc: support+c9@shop.example", 9),
        ("To: undisclosed-recipients:;\nDelivered-To: support+c5@shop.example", 5),
        ("To: list@example.com\nX-Original-To: support+c6@shop.example", 6),
        ("To: support+c123@elsewhere.example", None),
        ("To: support+x123@shop.example", None),
        ("To: support@shop.example", None),
    ],
)
def test_plus_address_conversation_token(header, expected):
    raw = raw_mail(f"From: ana@example.com\nMessage-ID: <p@x>\n{header}", b"hi")
    assert parse(raw, own_addresses=OWN).thread.conversation_id == expected


# --- flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, flag",
    [
        ({"Auto_Submitted": "auto-replied"}, "auto_reply"),
        ({"Auto_Submitted": "auto-generated"}, "auto_reply"),
        ({"X_Autoreply": "yes"}, "auto_reply"),
        ({"X_Autorespond": "vacation"}, "auto_reply"),
        ({"Precedence": "auto_reply"}, "auto_reply"),
        ({"subject": "Automatic reply: Order 1234"}, "auto_reply"),
        ({"subject": "Out of Office: back on Monday"}, "auto_reply"),
        ({"subject": "Autosvar: Order 1234"}, "auto_reply"),
        ({"subject": "Abwesenheitsnotiz: Bestellung"}, "auto_reply"),
        ({"subject": "Réponse automatique : commande"}, "auto_reply"),
        ({"subject": "自动回复: 订单"}, "auto_reply"),
        ({"Precedence": "bulk"}, "bulk"),
        ({"Precedence": "list"}, "bulk"),
        ({"List_Unsubscribe": "<mailto:unsub@news.example>"}, "bulk"),
        ({"List_Id": "Deals <deals.news.example>"}, "bulk"),
    ],
)
def test_machine_mail_flags(headers, flag):
    msg = parse(build(**headers), own_addresses=OWN)
    assert flag in msg.flags and msg.automated


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "no"},
        # A request not to auto-reply TO this mail, not a sign that it is one (MS-OXCMAIL).
        {"X_Auto_Response_Suppress": "All"},
        {"subject": "Out of office hours support?"},
        {"subject": "Re: Automatic replies are annoying"},
        # Our support address is a Google Group: its List-* headers are on every customer's mail.
        {"List_Id": "<support.shop.example>", "Precedence": "list"},
    ],
)
def test_human_mail_is_not_flagged(headers):
    msg = parse(build(**headers), own_addresses=OWN)
    assert msg.flags == () and not msg.automated


def test_auto_response_suppress_is_passed_on():
    msg = parse(build(X_Auto_Response_Suppress="OOF, AutoReply"), own_addresses=OWN)
    assert msg.metadata["headers"] == {"auto_response_suppress": "OOF, AutoReply"}


def test_own_address_flag():
    for sender in ("support@shop.example", "Shop <Support@Shop.Example>", "support+c12@shop.example"):
        assert "own_address" in parse(build(from_=sender), own_addresses=OWN).flags
    assert "own_address" not in parse(build(from_="ana@example.com"), own_addresses=OWN).flags
    assert parse(build(from_="support@shop.example")).flags == ()  # no own addresses configured


def test_bounce_threads_onto_the_bounced_message():
    msg = parse(fx("flanker/bounce/mailbox-full.eml"))
    assert "bounce" in msg.flags
    assert msg.thread.in_reply_to[0] == "<4E326A95.3010907@example.com>"
    assert msg.metadata["report_type"] == "delivery-status"
    # A plain-text bounce (no DSN parts): the original id is read from the quoted headers.
    gmail = parse(fx("flanker/bounce/gmail-invalid-address.eml"))
    assert "bounce" in gmail.flags
    assert gmail.thread.in_reply_to == ("<CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com>",)


def test_bounce_original_comes_before_its_own_references():
    head = (
        "From: MAILER-DAEMON@mx.example\nTo: support@shop.example\nSubject: Undelivered Mail\n"
        "Message-ID: <dsn1@mx.example>\nIn-Reply-To: <other@x>\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"'
    )
    body = (
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; ana@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <reply-42@shop.example>\r\nSubject: Re: Order\r\n"
        b"--B--\r\n"
    )
    msg = parse(raw_mail(head, body), own_addresses=OWN)
    assert msg.flags == ("bounce",)
    assert msg.thread.in_reply_to == ("<reply-42@shop.example>", "<other@x>")
    assert msg.metadata["delivery_status"] == [{"recipient": "ana@example.com", "action": "failed", "status": "5.1.1"}]


def test_dsn_parts_read_as_header_lists_still_make_a_bounce():
    # The stdlib parses message/delivery-status as a list of header blocks; it must still count.
    msg = parse(fx("flanker/bounce/delayed-broken.eml"))
    assert "bounce" in msg.flags
    assert msg.metadata["delivery_status"][0]["status"] == "4.2.2"
    assert [a.filename for a in msg.attachments] == ["delivery-status.txt"]


def test_read_receipts_and_abuse_reports_are_automated():
    assert "auto_reply" in parse(fx("flanker/disposition-notification.eml")).flags
    assert parse(fx("flanker/complaints/yahoo.eml")).automated


# --- bodies -------------------------------------------------------------------------------------


def test_plain_text_is_preferred_and_html_kept_raw():
    msg = parse(fx("talon/standard_replies/gmail.eml"))
    assert msg.text == "Hello"
    assert msg.html is not None and "<div" in msg.html


def test_html_only_mail_becomes_readable_text():
    html = (
        "<html><head><style>.x{color:red}</style><script>steal()</script></head><body>"
        "<p>Hello,</p><p>my kettle arrived <b>broken</b>.<br>Order <a href='https://shop.example/o/1234'>1234</a>.</p>"
        "<ul><li>lid cracked</li><li>no cable</li></ul>"
        '<div class="gmail_quote">On Mon, Jan 1, 2024 at 9:00 AM Shop &lt;support@shop.example&gt; wrote:'
        "<blockquote>Your order has shipped.</blockquote></div></body></html>"
    )
    msg = parse(build(html, subtype="html"))
    assert msg.text == "Hello,\n\nmy kettle arrived broken.\nOrder 1234.\n\n- lid cracked\n- no cable"
    assert msg.html is not None and "<script>" in msg.html  # raw: the hub sanitises
    assert "> Your order has shipped." in msg.metadata["full_text"]
    assert "steal" not in msg.metadata["full_text"] and "color" not in msg.metadata["full_text"]


def test_html_charset_from_meta_tag():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"></head><body>Привет</body></html>'
    raw = raw_mail("From: a@example.com\nMessage-ID: <m@x>\nContent-Type: text/html", html.encode("cp1251"))
    assert parse(raw).text == "Привет"


def test_quoted_history_and_signature_go_to_full_text():
    body = "Yes, please cancel it.\n\nSent from my iPhone\n\nOn Mon, Jan 1, 2024 at 9:00 AM, Shop <support@shop.example> wrote:\n> Shall we cancel order 1234?"
    msg = parse(build(body))
    assert msg.text == "Yes, please cancel it."
    assert msg.metadata["full_text"] == body
    assert "full_text" not in parse(build("Just this.")).metadata


def test_talon_iphone_and_sparrow_through_parse():
    for name in ("iphone", "sparrow"):
        msg = parse(fx(f"talon/standard_replies/{name}.eml"))
        assert msg.text == "Hello"
        expected = (EMAIL / "talon/standard_replies" / f"{name}_reply_text").read_text()
        assert expected.split("\n")[-1].strip() in msg.metadata["full_text"]


def test_format_flowed_is_unwrapped():
    head = 'From: a@example.com\nMessage-ID: <f@x>\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=no'
    body = b"This is a long line that the client \r\nwrapped for sending.\r\n\r\n-- \r\nAna\r\n"
    msg = parse(raw_mail(head, body))
    assert msg.text == "This is a long line that the client wrapped for sending."


def test_a_forward_keeps_what_it_forwards():
    body = "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Courier <c@courier.example>\nDate: Mon\nSubject: Delivery failed\n\nWe could not deliver parcel 99."
    msg = parse(build(body, subject="Fwd: Delivery failed"))
    assert "We could not deliver parcel 99." in msg.text


def test_subject_only_mail_keeps_its_subject_as_text():
    msg = parse(raw_mail("From: a@example.com\nSubject: Cancel order 1234\nMessage-ID: <e@x>", b""))
    assert (msg.text, msg.metadata["empty_body"]) == ("Cancel order 1234", True)
    validate(msg)


def test_nul_bytes_and_broken_base64_do_not_break_anything():
    raw = raw_mail(
        "From: a@example.com\nMessage-ID: <b@x>\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64",
        b"SGVsbG8gAHdvcmxk!!!*\r\n====",
    )
    msg = parse(raw)
    assert "\x00" not in msg.text and msg.text.startswith("Hello")


def test_a_multipart_whose_boundary_matches_nothing_is_recovered():
    msg = parse(fx("mail-parser/mail_malformed_3"))
    assert msg.text.startswith("Problemas para visualizar")


# --- attachments --------------------------------------------------------------------------------


def _with_attachments(*parts: tuple[bytes, str, str | None, str | None]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "ana@example.com"
    msg["To"] = "support@shop.example"
    msg["Subject"] = "files"
    msg["Message-ID"] = "<att@x>"
    msg.set_content("See attached.")
    for data, ctype, name, cid in parts:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name, cid=cid)
    return msg.as_bytes(policy=SMTP)


def test_attachments_with_decoded_names():
    names = {a.filename for a in parse(fx("mikel-mail/attachment_emails/attachment_nonascii_filename.eml")).attachments}
    assert names == {"ciële.txt"}
    [att] = parse(fx("mikel-mail/multi_charset/japanese_attachment.eml")).attachments  # RFC 2047 name
    assert att.filename == "てすと.txt"
    [att] = parse(fx("mikel-mail/multi_charset/japanese_attachment_long_name.eml")).attachments  # RFC 2231
    assert att.filename == "かきくけこ" * 5 + ".txt"
    raw = _with_attachments((b"%PDF-1.4 invoice", "application/pdf", "Rechnung März.pdf", None))
    [att] = parse(raw).attachments
    assert (att.filename, att.content_type, att.data) == ("Rechnung März.pdf", "application/pdf", b"%PDF-1.4 invoice")


def test_raw_8bit_attachment_names():
    # Yahoo sent the name as raw UTF-8 (cut mid-character); the stdlib turns it into "?"s.
    [att] = parse(fx("flanker/russian-attachment-yahoo.eml")).attachments
    assert att.filename.startswith("Картинка с очень, очень длинным")


def test_inline_cid_image():
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    raw = _with_attachments((png, "image/png", None, "<logo123@shop.example>"))
    [att] = parse(raw).attachments
    assert att.content_id == "logo123@shop.example"
    assert att.content_type == "image/png" and att.data == png and att.filename.endswith(".png")
    inline = parse(fx("mail-parser/mail_test_10")).attachments
    assert any(a.content_id and a.content_type == "image/gif" for a in inline)


def test_oversized_attachment_is_skipped_not_fatal():
    raw = _with_attachments((b"x" * 5000, "application/zip", "big.zip", None), (b"small", "text/plain", "note.txt", None))
    msg = parse(raw, max_attachment_bytes=1000)
    assert [a.filename for a in msg.attachments] == ["note.txt"]
    assert msg.metadata["skipped_attachments"] == [{"filename": "big.zip", "content_type": "application/zip", "size": 5000}]
    assert msg.text == "See attached."
    huge = parse(_with_attachments((b"y" * 200_000, "application/zip", "huge.zip", None)), max_attachment_bytes=1000)
    [skipped] = huge.metadata["skipped_attachments"]
    assert skipped["filename"] == "huge.zip" and skipped["size"] >= 200_000


def test_enclosed_message_becomes_forwarded_eml():
    msg = parse(fx("mikel-mail/attachment_emails/attachment_message_rfc822.eml"))
    [att] = msg.attachments
    assert (att.filename, att.content_type) == ("forwarded.eml", "message/rfc822")
    assert b"Subject:" in att.data


# --- not an email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n ", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, b"just some text\nwith lines", b"\x00\x01\x02\xff" * 50],
)
def test_not_an_email_is_rejected(raw):
    with pytest.raises(RejectedInput):
        parse(raw)


def test_sender_fallbacks():
    assert parse(raw_mail("Sender: s@example.com\nSubject: x", b"hi")).sender.address == "s@example.com"
    assert parse(raw_mail("Return-Path: <r@example.com>\nSubject: x", b"hi")).sender.address == "r@example.com"
    assert parse(b"From r@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nhi").sender.address == "r@example.com"
    nobody = parse(fx("flanker/attached-pdf.eml"))  # no sender anywhere: parsed; the hub refuses it
    assert nobody.sender.address == "" and nobody.attachments


# --- never raises -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_are_rejected(data):
    try:
        msg = parse(data)
    except RejectedInput:
        return
    json.dumps(msg.metadata)


_CORPUS = [p.read_bytes() for p in fixture_emails() if p.name not in NOT_AN_EMAIL and p.stat().st_size < 20_000]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_CORPUS), st.integers(min_value=0), st.binary(min_size=0, max_size=40), st.integers(min_value=0))
def test_damaged_fixture_emails_never_crash(raw, cut, junk, where):
    """Real mail truncated and with junk bytes spliced in, as a broken relay or disk would."""
    cut = cut % (len(raw) + 1)
    where = where % (cut + 1)
    damaged = raw[:where] + junk + raw[where:cut]
    try:
        msg = parse(damaged)
    except RejectedInput:
        return
    json.dumps(msg.metadata)
    msg.text.encode("utf-8")


def test_charset_decode_never_raises():
    for label in (None, "", "utf-8", "base64", "undefined", "utf-16", "iso-2022-jp", "x-mac-roman", "gb2312", "\x00", "a" * 300):
        for data in (b"", b"abc", b"\xff\xfe\x00", b"\x1b$B", "héllo".encode("latin-1"), bytes(range(256))):
            text, fallback = decode(data, label)
            assert isinstance(text, str) and isinstance(fallback, bool)


# --- through the hub ----------------------------------------------------------------------------


def _bounce_of(message_id: str) -> bytes:
    head = (
        "From: MAILER-DAEMON@mx.example\nTo: support@shop.example\nSubject: Undelivered Mail\nMessage-ID: <dsn2@mx.example>\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"'
    )
    body = (
        b"--B\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: " + message_id.encode()
        + b"\r\nFrom: a@b.c\r\n\r\nhi\r\n--B--\r\n"
    )
    return raw_mail(head, body)


def test_bounce_joins_the_conversation_of_the_bounced_message(engine, tmp_path):
    from sqlalchemy import update

    from hub.contract.signing import sign_message_id
    from hub.conversations.queries import require_conversation
    from hub.conversations.replies import queue_outbound
    from hub.ingest.pipeline import IngestPolicy
    from hub.store.blobs import BlobStore

    key, blobs = b"k" * 32, BlobStore(tmp_path / "blobs")
    first = ingest(engine, parse(build(message_id="<question-42@example.com>", from_="ana@example.com")), blobs=blobs)
    # Our reply to Ana, as the outbox stores it once sent: under its signed Message-ID.
    ours = sign_message_id(key, conversation_id=first.conversation_id, seed="message:2", domain="shop.example")
    with engine.begin() as conn:
        reply = queue_outbound(conn, require_conversation(conn, first.conversation_id), "It ships today.")
        conn.execute(update(Message.__table__).where(Message.__table__.c.id == reply).values(external_id=ours))
    bounce = ingest(engine, parse(_bounce_of(ours), own_addresses=OWN), blobs=blobs, policy=IngestPolicy(message_id_key=key))
    assert bounce.conversation_id == first.conversation_id
    with engine.connect() as conn:
        status = conn.execute(select(Conversation.__table__.c.status)).scalar_one()
        stored = conn.execute(select(Message.__table__.c.metadata).where(Message.__table__.c.id == bounce.message_id)).scalar_one()
    assert status == "open"
    assert stored["flags"] == ["bounce"]


def test_a_bounce_naming_a_customers_own_message_id_stays_out_of_the_conversation(engine, tmp_path):
    """Anybody can make mail look like a bounce; only a signed id of ours proves the mail bounced."""
    from hub.store.blobs import BlobStore

    blobs = BlobStore(tmp_path / "blobs")
    first = ingest(engine, parse(build(message_id="<question-42@example.com>", from_="ana@example.com")), blobs=blobs)
    fake = ingest(engine, parse(_bounce_of("<question-42@example.com>"), own_addresses=OWN), blobs=blobs)
    assert fake.conversation_id != first.conversation_id


def test_a_parser_failure_still_yields_a_message(monkeypatch):
    """Whatever breaks inside (a bug, a RecursionError on absurd nesting), the mail is kept."""
    import importlib

    module = importlib.import_module("channels.email.parse")  # the package re-exports parse()

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(module, "_walk", broken)
    msg = parse(build("Where is my order?"))
    assert msg.text == "Where is my order?" and msg.metadata["parse_error"] == "ValueError: boom"
    assert msg.sender.address == "ana@example.com" and msg.external_id == "<m1@example.com>"


def test_absurdly_nested_multiparts():
    depth = 1500
    parts = b"".join(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i) for i in range(1, depth))
    raw = raw_mail('From: a@example.com\nMessage-ID: <deep@x>\nContent-Type: multipart/mixed; boundary="b0"', parts)
    raw += b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n" % (depth - 1)
    msg = parse(raw)
    assert msg.sender.address == "a@example.com"


# --- hostile mail: every step is linear, and capped before it runs -------------------------------
# Each mail here is large enough that a quadratic step would take minutes; bench/hostile.py prints
# how long they take next to a plain mail of the same size.

HOSTILE_HEAD = "From: Ana Lima <ana@example.com>\nTo: support@shop.example\nSubject: Order 1234\nMessage-ID: <h1@example.com>"


def test_the_text_is_cut_at_max_text_before_quote_stripping():
    prose = "My boots have not arrived and the tracking page has said the same thing for a week now.\n"
    quoted = "\nOn Mon, Jan 1, 2024 at 9:00 AM, Shop <support@shop.example> wrote:\n> Your order has shipped.\n"
    body = (prose * 40_000 + quoted).encode()  # 3.6 MB: the quote lies past MAX_TEXT
    msg = parse(raw_mail(HOSTILE_HEAD + "\nContent-Type: text/plain; charset=utf-8", body))
    assert len(msg.text) == MAX_TEXT and msg.metadata["truncated"] is True
    assert msg.text.startswith(prose) and "wrote:" not in msg.text
    assert "full_text" not in msg.metadata  # the cut text is the whole text: nothing was stripped


def test_a_text_part_of_many_megabytes_is_decoded_only_up_to_the_cap():
    line = "Where is my order? It is A-1001 and it is late.\n"
    body = (line * 200_000).encode("utf-16-le")  # 19 MB in a charset of 2 bytes a character
    msg = parse(raw_mail(HOSTILE_HEAD + "\nContent-Type: text/plain; charset=utf-16-le", body))
    assert len(msg.text) == MAX_TEXT and msg.text.startswith(line) and msg.metadata["truncated"]


def test_the_crafted_mail_that_stalled_parse_is_read():
    """Underscore rules, a "Sent from" line of parentheses and lines that end like attributions:
    the quote stripper was quadratic in each (this mix took 12.5 s at 440 KB)."""
    body = "Where is my order?\n\n" + "_" * 20 + "\n" + ("_" * 20 + "\n1:00 a@b.cc:\n") * 20_000
    body += "Sent from " + "(" * 100_000 + "\n"
    msg = parse(raw_mail(HOSTILE_HEAD, body.encode()))
    assert msg.text.startswith("Where is my order?") and msg.sender.address == "ana@example.com"


def test_nesting_past_max_depth_is_kept_opaque():
    """10,000 nested multiparts: the stdlib's reader checks every line against every open boundary,
    so the parser stops descending at MAX_DEPTH. A text part above the limit is still read."""
    depth = 10_000
    levels = b"".join(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i) for i in range(1, depth))
    near = b"--b0\r\nContent-Type: text/plain\r\n\r\nWhere is my order?\r\n"
    deep = b"--b%d\r\nContent-Type: text/plain\r\n\r\n" % (depth - 1) + b"too deep to read\r\n" * 20_000
    msg = parse(raw_mail(HOSTILE_HEAD + '\nContent-Type: multipart/mixed; boundary="b0"', near + levels + deep))
    assert msg.text == "Where is my order?" and msg.sender.address == "ana@example.com"


def test_enclosed_messages_nested_ten_thousand_deep():
    nested = b"Content-Type: message/rfc822\r\n\r\n" * 10_000 + b"\r\nWhere is my order?\r\n"
    msg = parse(raw_mail(HOSTILE_HEAD + "\nContent-Type: multipart/mixed; boundary=b",
                         b"--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b\r\n" + nested + b"--b--\r\n"))
    assert msg.text == "See below."
    assert [a.filename for a in msg.attachments] == ["forwarded.eml"]


def test_twenty_thousand_parts():
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nline %d\r\n" % i for i in range(20_000))
    msg = parse(raw_mail(HOSTILE_HEAD + '\nContent-Type: multipart/mixed; boundary="b"', parts + b"--b--\r\n"))
    lines = msg.metadata.get("full_text", msg.text).split("\n\n")
    assert lines[:3] == ["line 0", "line 1", "line 2"] and len(lines) < 20_000  # parts past MAX_PARTS are not read


def test_multiparts_whose_boundaries_never_match_nested_deep():
    """Each such multipart is recovered by parsing its body again; nested, they would parse the
    same bytes once per level."""
    levels = b"".join(b'--x%d\r\nContent-Type: multipart/mixed; boundary="wrong%d"\r\n\r\n' % (i, i) for i in range(3_000))
    msg = parse(raw_mail(HOSTILE_HEAD + '\nContent-Type: multipart/mixed; boundary="wrong"', levels + b"Where is my order?\r\n"))
    assert msg.sender.address == "ana@example.com"


def test_huge_headers():
    many = ", ".join(f"a{i}@example.com" for i in range(100_000))  # one To of 1.8 MB
    head = HOSTILE_HEAD.replace("To: support@shop.example", f"To: {many}")
    head += "\nReferences: " + " ".join(f"<r{i}@example.com>" for i in range(100_000))
    head += "\n" + "\n".join(f"Cc: c{i}@example.com" for i in range(20_000))
    head = head.replace("Subject: Order 1234", "Subject: " + "=?x?q?a " * 100_000)
    msg = parse(raw_mail(head, b"Where is my order?"))
    assert msg.text == "Where is my order?"
    assert len(msg.metadata["to"]) == MAX_LISTED_ADDRESSES and msg.metadata["to"][0] == "a0@example.com"
    assert msg.metadata["cc"][:2] == ["c0@example.com", "c1@example.com"]
    # The newest ids are at the end of References: those are kept.
    assert msg.thread.in_reply_to[:2] == ("<r99999@example.com>", "<r99998@example.com>")
    assert msg.subject.startswith("=?x?q?a ") and len(msg.subject) <= MAX_HEADER_CHARS


def test_a_folded_header_of_a_million_lines_and_a_million_headers():
    folded = "X-Note: a" + "\n b" * 200_000
    many = "\n".join("X-Spam: yes" for _ in range(200_000))
    msg = parse(raw_mail(f"{HOSTILE_HEAD}\n{folded}\n{many}", b"Where is my order?"))
    assert msg.text == "Where is my order?" and msg.external_id == "<h1@example.com>"


def test_a_bounce_with_the_original_message_id_under_900_000_empty_lines():
    head = HOSTILE_HEAD.replace("Ana Lima <ana@example.com>", "MAILER-DAEMON@mx.example")
    body = b"Delivery failed.\n" + b"\n" * 900_000 + b"Message-ID: <reply-42@shop.example>\n"
    msg = parse(raw_mail(head, body))
    assert "bounce" in msg.flags and msg.thread.in_reply_to == ("<reply-42@shop.example>",)


_FLOWED_LINES = st.one_of(
    st.sampled_from(["", " ", "a", "a ", "ab  ", " b", "  c ", "-- ", " -- ", "--", "--  ", "-- x ", "\t", "a\t "]),
    st.text(alphabet=" -a\t\u3000", max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FLOWED_LINES, max_size=30), st.booleans())
def test_format_flowed_without_quotes_is_unwrapped_as_line_by_line(lines, delsp):
    """Without quoted lines format=flowed is undone in two passes over the text; it must give what
    the line-by-line reading gives."""
    text = "\n".join(lines)
    assert _unflow(text, delsp) == _unflow_lines(text, delsp)

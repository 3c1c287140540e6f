"""Quote and signature stripping (channels/email/quotes.py) and HTML -> text, against the public
fixture bodies: crisp (expected reply texts in many languages), zapier, talon."""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from channels.email.html_text import html_to_text
from channels.email.quotes import extract_reply, strip_quotes
from tests.conftest import FIXTURES

EMAIL = FIXTURES / "email"
CRISP = EMAIL / "crisp"
ZAPIER = EMAIL / "zapier"
TALON = EMAIL / "talon"
CRISP_EXPECTED = json.loads((CRISP / "expected.json").read_text(encoding="utf-8"))

# crisp's expectation is its parser's FIRST fragment. For a reply written under and between the
# quotes (email_2.txt: "Hi," / "On ... wrote:" / quote / the actual answer / quote ...), that
# fragment is just "Hi,": we keep the answers with the quotes they answer instead (see
# test_interleaved_answers_are_kept), so this one differs by design.
CRISP_DIFFERS_BY_DESIGN = {"email_2.txt"}


def crisp(name: str) -> str:
    return (CRISP / "fixtures" / name).read_text(encoding="utf-8")


def zapier(name: str) -> str:
    return (ZAPIER / name).read_text(encoding="utf-8")


def norm(text: str) -> str:
    """Trailing whitespace is never significant in our texts (they are trimmed by design)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_crisp_expected_reply_texts_match_on_at_least_90_percent():
    expected = CRISP_EXPECTED["reply_text"]
    assert len(expected) >= 40
    failures = []
    for name, case in expected.items():
        got = extract_reply(crisp(name))
        if norm(got) != norm(case["text"]):
            failures.append(name)
    rate = 1 - len(failures) / len(expected)
    print(f"\ncrisp reply texts matched: {len(expected) - len(failures)}/{len(expected)} ({rate:.0%})")
    for name in failures:
        print(f"  differs: {name}{' (by design)' if name in CRISP_DIFFERS_BY_DESIGN else ''}")
    assert rate >= 0.9, failures
    assert set(failures) <= CRISP_DIFFERS_BY_DESIGN, failures


def _first_fragment_checks():
    """crisp's regex assertions on the first fragment (the visible reply) of the other fixtures."""
    for test in CRISP_EXPECTED["tests"]:
        name = test.get("fixture")
        if not name or name in CRISP_EXPECTED["reply_text"]:
            continue
        for assertion in test["assertions"]:
            if assertion["type"] == "fragment_regex" and assertion.get("index") == 0:
                yield pytest.param(name, assertion, id=f"{test['test']}:{assertion['pattern']}")


@pytest.mark.parametrize("name, assertion", list(_first_fragment_checks()))
def test_crisp_first_fragment_assertions(name, assertion):
    got = extract_reply(crisp(name))
    flags = re.M if "m" in assertion.get("flags", "") else 0
    assert bool(re.search(assertion["pattern"], got.strip() if assertion.get("trim") else got, flags)) is assertion["expected"]


def test_crisp_parse_reply_example():
    [case] = [t for t in CRISP_EXPECTED["tests"] if t["test"] == "test_parseReply_with_quote_header"]
    got = extract_reply(case["input"])
    assert "Hi there" in got and "I appreciate your help" in got
    assert "How can we help you today" not in got and "Support Team" not in got
    assert "Best regards" not in got  # the closing is signature


@pytest.mark.parametrize(
    "name, must_contain",
    [
        ("email_not_a_signature.txt", "Sincerely,\nSuper Domain Name Manager"),
        ("email_not_a_signature_2.txt", "-- second point needs to be checked"),
        ("email_not_a_signature_2.txt", "Thanks!"),
        ("email_tricky_1_on_false_positive.txt", "On a separate note"),
        ("email_tricky_2_url_with_wrote.txt", 'patterns like "wrote:" in them'),
        ("email_tricky_3_code_block.txt", "signature-like patterns"),
        ("email_tricky_4_from_in_body.txt", "This is the actual message content."),
        ("email_tricky_6_regards_in_sentence.txt", "This is the actual content that should be visible."),
        ("email_tricky_7_multiple_dashes.txt", "Also these equal signs are just separators"),
        ("email_tricky_8_sent_from_in_content.txt", "All messages are sent from the main server."),
        ("email_tricky_13_timestamp_variations.txt", "All of these are just examples in my content"),
        ("email_tricky_20_html_entities.txt", "&amp; symbols"),
        ("email_sent_from_my_not_signature.txt", "Sent from my desk, is much easier then my mobile phone."),
        ("email_5.txt", "It goes on and on\nfor a while."),
    ],
)
def test_false_positives_are_kept(name, must_contain):
    assert must_contain in extract_reply(crisp(name))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("chinese.txt", "Hi, I want to cancel my order, could you recall the package and return it? Thank you"),
        (
            "chinese2.txt",
            "Dear bbb\nThis is X. I just brought one sneaker and two slippers . Can I cancel my order please thanks",
        ),
        ("email_iPhone.txt", "Here is another email"),
        ("email_BlackBerry.txt", "Here is another email"),
        ("email_multi_word_sent_from_my_mobile_device.txt", "Here is another email"),
        ("email_headers_no_delimiter.txt", "And another reply!"),
        ("email_2_1.txt", "Outlook with a reply"),
        ("email_2_2.txt", "Outlook with a reply directly above line"),
        ("email_2_3.txt", "Outlook with a reply above headers using unusual format"),
        ("email_1_4.txt", "Awesome! I haven't had another problem with it."),
        ("email_1_6.txt", "I get proper rendering as well."),
        ("email_1_7.txt", ":+1:"),
        ("correct_sig.txt", "this is an email with a correct -- signature."),
        ("email_gmail.txt", "This is a test for inbox replying to a github message."),
        (
            "pathological.txt",
            "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer.",
        ),
    ],
)
def test_zapier_replies(name, expected):
    assert extract_reply(zapier(name)) == expected


def test_chinese_quote_headers_are_cut_where_they_start():
    # 发件人/日期/收件人/主题 block, and "<name> <addr>于<date>写道："
    assert "发件人" not in extract_reply(zapier("chinese.txt"))
    assert "写道" not in extract_reply(zapier("chinese2.txt"))
    assert "Shipping Confirmation" not in extract_reply(zapier("chinese.txt"))


@pytest.mark.parametrize(
    "name, kept",
    [
        ("email_sig_delimiter_in_middle_of_line.txt", "And here is a fix -- this is not a signature.\n\nkthxbai"),
        ("email_one_is_not_on.txt", "One outstanding question I had:"),
        ("email_bullets.txt", "   - how about bullets\n   - and another"),
        ("greedy_on.txt", "fails, the tunnel is not working."),
        ("email_partial_quote_header.txt", "fails, the tunnel is not working."),
    ],
)
def test_zapier_content_is_kept(name, kept):
    got = extract_reply(zapier(name))
    assert kept in got
    assert "George Plymale wrote" not in got and "Dave Tapley wrote" not in got


def test_pathological_input_is_fast():
    text = zapier("pathological.txt") * 20
    started = time.perf_counter()
    extract_reply(text)
    assert time.perf_counter() - started < 2.0


def test_interleaved_answers_are_kept():
    """Answers written between quoted lines keep the quotes they answer; the trailing quote, the
    quoted older history and the signature go."""
    got = extract_reply(zapier("email_1_8.txt"))
    assert "I will reply under this one" in got and "and under this." in got
    assert "> okay?" in got
    assert "hi there" not in got and "Hey there, this is my signature" not in got
    got = extract_reply(crisp("email_2.txt"))
    assert got.startswith("Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:")
    assert "You can list the keys for the bucket" in got
    assert got.endswith("you’ll need to delete them all individually.\"")
    assert "riak-users mailing list" not in got


def test_a_bottom_posted_answer_is_the_reply():
    text = "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello\n"
    assert extract_reply(text) == "Hello"
    text = "> Where is my order?\n\nIt arrived, thanks!\n\n-- \nAna"
    assert extract_reply(text) == "It arrived, thanks!"


def test_quote_without_header_between_answers():
    got = extract_reply(crisp("email_tricky_19_quote_without_header.txt"))
    assert got.startswith("I wanted to respond to your points:")
    assert "My response to the quoted text above." in got and "And my final thoughts." in got


@pytest.mark.parametrize(
    "header",
    [
        "On Tue, Mar 1, 2011 at 6:02 PM, Shop Support <support@shop.example> wrote:",
        "Le mar. 1 mars 2011 à 18:02, Shop Support <support@shop.example> a écrit :",
        "Am 01.03.2011 um 18:02 schrieb Shop Support <support@shop.example>:",
        "El mar., 1 mar. 2011 a las 18:02, Shop Support (<support@shop.example>) escribió:",
        "Il giorno mar 1 mar 2011 alle ore 18:02 Shop Support <support@shop.example> ha scritto:",
        "Em ter., 1 de mar. de 2011 às 18:02, Shop Support <support@shop.example> escreveu:",
        "Op di 1 mrt. 2011 om 18:02 schreef Shop Support <support@shop.example>:",
        "W dniu 1.03.2011 o 18:02, Shop Support <support@shop.example> pisze:",
        "Dnia 1 marca 2011 18:02 Shop Support <support@shop.example> napisał(a):",
        "вт, 1 мар. 2011 г. в 18:02, Shop Support <support@shop.example>:",
        "1 марта 2011 г., в 18:02, Shop Support <support@shop.example> написал(а):",
        "Den tis 1 mars 2011 kl 18:02 skrev Shop Support <support@shop.example>:",
        "ti 1. maalisk. 2011 klo 18.02 Shop Support (support@shop.example) kirjoitti:",
        "2011年3月1日(火) 18:02 Shop Support <support@shop.example>:",
        "在 2011年3月1日 18:02，Shop Support <support@shop.example> 写道：",
        "Shop Support <support@shop.example> 于2011年3月1日周二 下午6:02写道：",
        "2011. 3. 1. 오후 6:02, Shop Support <support@shop.example> 작성:",
        "2011. márc. 1. 18:02 keltezéssel, Shop Support <support@shop.example> írta:",
        "1 Mar 2011 Sal 18:02 tarihinde Shop Support <support@shop.example> şunu yazdı:",
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
        "-------- Message d'origine --------",
        "-----原始邮件-----",
        "-----Исходное сообщение-----",
        "-----Oryginalna wiadomość-----",
        "From: Shop Support <support@shop.example>\nSent: Tuesday, March 1, 2011 6:02 PM\nTo: Ana\nSubject: Your order",
        "Von: Shop Support <support@shop.example>\nGesendet: Dienstag, 1. März 2011 18:02\nAn: Ana\nBetreff: Ihre Bestellung",
        "De : Shop Support <support@shop.example>\nEnvoyé : mardi 1 mars 2011 18:02\nÀ : Ana\nObjet : Votre commande",
        "Da: Shop Support <support@shop.example>\nInviato: martedì 1 marzo 2011 18:02\nA: Ana\nOggetto: Il tuo ordine",
        "Od: Shop Support <support@shop.example>\nWysłano: wtorek, 1 marca 2011 18:02\nDo: Ana\nTemat: Zamówienie",
        "От: Shop Support <support@shop.example>\nОтправлено: 1 марта 2011 г. 18:02\nКому: Ana\nТема: Заказ",
        "发件人: Shop Support <support@shop.example>\n发送时间: 2011年3月1日 18:02\n收件人: Ana\n主题: 您的订单",
        "寄件者: Shop Support <support@shop.example>\n寄件日期: 2011年3月1日 18:02\n收件者: Ana\n主旨: 您的訂單",
        "差出人: Shop Support <support@shop.example>\n送信日時: 2011年3月1日 18:02\n宛先: Ana\n件名: ご注文",
        "________________________________\nFrom: Shop Support <support@shop.example>\nSent: Tuesday, March 1, 2011 6:02 PM",
        "*From:* Shop Support [mailto:support@shop.example]\n*Sent:* Tuesday, March 1, 2011 6:02 PM",
    ],
)
def test_quote_headers_in_many_languages(header):
    text = f"Where is my parcel? Order 1234.\n\n{header}\n\nYour order has shipped.\n\nShop Support"
    assert extract_reply(text) == "Where is my parcel? Order 1234."


@pytest.mark.parametrize(
    "signature",
    [
        "Sent from my iPhone",
        "Sent from my Galaxy",
        "Sent from Mail for Windows 10",
        "Get Outlook for Android<https://aka.ms/ghei36>",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Gesendet von Outlook für Android<https://aka.ms/AAb9ysg>",
        "Enviado desde mi iPhone",
        "Inviato da iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Sendt fra min iPhone",
        "Wysłane z iPhone'a",
        "Отправлено с iPhone",
        "发自我的iPhone",
        "iPhoneから送信",
        "-- \nAna Lima\nACME Ltd",
        "Kind regards,\nAna Lima\nACME Ltd | +44 20 7946 0958",
        "Mit freundlichen Grüßen\nAna Lima",
        "Cordialement,\nAna",
        "С уважением,\nАна",
    ],
)
def test_signatures_are_stripped(signature):
    assert extract_reply(f"Please cancel order 1234.\n\n{signature}\n") == "Please cancel order 1234."


def test_stripping_everything_keeps_the_whole_text():
    assert extract_reply("Sent from my iPhone") == "Sent from my iPhone"
    text = "On Mon, Jan 1, 2024 at 9:00 AM, Ana <ana@example.com> wrote:\n> Hello"
    assert extract_reply(text) == text
    assert extract_reply("") == ""


def test_forwarded_content_is_kept():
    got = extract_reply(crisp("email_tricky_17_forward_header.txt"))
    assert "This is the forwarded content" in got
    outlook_forward = "FYI, see below.\n\nFrom: Shop <a@shop.example>\nSent: Monday\nTo: Ana\nSubject: Invoice\n\nInvoice 42 is due."
    assert "Invoice 42 is due." in extract_reply(outlook_forward, forwarded=True)
    assert "Invoice 42 is due." not in extract_reply(outlook_forward)


def test_talon_expected_reply_texts():
    """talon's expectation is the text without quoted history (its signature stays): that is
    strip_quotes(); extract_reply() also drops the signature."""
    import email

    for name in ("iphone", "sparrow"):
        msg = email.message_from_bytes((TALON / "standard_replies" / f"{name}.eml").read_bytes())
        part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        body = part.get_payload(decode=True).decode(part.get_content_charset() or "ascii")
        expected = (TALON / "standard_replies" / f"{name}_reply_text").read_text(encoding="utf-8")
        assert norm(strip_quotes(body)) == norm(expected)
        assert extract_reply(body) == "Hello"


@pytest.mark.parametrize("path", sorted((TALON / "html_replies").glob("*.html")), ids=lambda p: p.name)
def test_talon_html_replies(path):
    text = html_to_text(path.read_text(encoding="utf-8", errors="replace"))
    reply = extract_reply(text)
    assert reply.startswith("Hi. I am fine.")
    assert reply.endswith("Alex")
    assert "Hello! How are you?" not in reply
    assert "Hello! How are you?" in text


def test_html_to_text_structure():
    html = """<html><head><title>T</title><style>p{color:red}</style><script>alert(1)</script></head>
    <body><div style="display:none">preheader junk</div>
    <p>Hello&nbsp;there,</p><p>line one<br>line two</p>
    <ul><li>first</li><li>second</li></ul><ol><li>a</li><li>b</li></ol>
    <p>See <a href="https://shop.example/t/1">tracking</a>.</p>
    <table><tr><td>Item</td><td>Qty</td></tr><tr><td>Kettle</td><td>2</td></tr></table>
    <blockquote>quoted <b>text</b></blockquote><pre>  keep   spacing</pre></body></html>"""
    text = html_to_text(html)
    assert text.splitlines() == [
        "Hello there,",
        "",
        "line one",
        "line two",
        "",
        "- first",
        "- second",
        "",
        "1. a",
        "2. b",
        "",
        "See tracking.",
        "",
        "Item  Qty",
        "Kettle  2",
        "",
        "> quoted text",
        "",
        "  keep   spacing",
    ]


def test_html_to_text_never_raises():
    for junk in ("", "   ", "<", "<?xml version='1.0' encoding='utf-8'?><p>x</p>", "<p>" * 5000, "\x00<b>a</b>", "&#0;&#xD800;"):
        assert isinstance(html_to_text(junk), str)


def test_wrapped_attribution_starting_with_a_date():
    # Android's Russian attribution, wrapped inside the address: the date line starts it.
    text = 'Hello\n02.04.2012 14:20 пользователь "bob@example.org" <\nbob@example.org> написал:\n\n> Hi'
    assert extract_reply(text) == "Hello"
    # ...while a sentence above a short attribution is never swallowed with it.
    assert extract_reply("Thanks!\nAna <ana@example.com> wrote:\n> Hi") == "Thanks!"


def test_adversarial_lines_take_linear_time():
    """Lines built to make the attribution patterns backtrack (a cubic blow-up was found here)."""
    lines = [
        "1:00 " + "a@" * 290 + ":",
        "2020 " + "<" * 290 + ":",
        "1:00 " + "<a@" * 190 + ":",
        "2020 " + "(a@" * 150 + ":",
        "On " + "wrote " * 100 + ":",
        "W dniu " + "a " * 280 + ":",
        "12:00 " + "1:00 " * 110 + ":",
    ]
    text = "\n".join(["hello"] + lines * 100)
    started = time.perf_counter()
    extract_reply(text)
    assert time.perf_counter() - started < 3.0


_LINES = st.sampled_from(
    [
        "", "> quoted", ">", "-- ", "--", "__", "_" * 32, "Sent from my iPhone", "Regards,", "Ana",
        "On Mon, Jan 1, 2024 at 9:00 AM, Ana <ana@example.com> wrote:", "From: Ana <ana@example.com>",
        "Sent: Monday", "To: Bo", "-----Original Message-----", "---------- Forwarded message ---------",
        "Where is my order?", "发件人: 客服", "写道：", ">:", "   - item", "<ana@example.com>", "wrote:",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_LINES, st.text(max_size=80)), max_size=40), st.booleans())
def test_stripping_never_raises_and_never_invents_text(lines, forwarded):
    text = "\n".join(lines)
    for result in (extract_reply(text, forwarded=forwarded), strip_quotes(text, forwarded=forwarded)):
        assert isinstance(result, str)
        kept = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        for line in result.split("\n"):
            assert line in kept or not line.strip() or any(line in k for k in kept)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_html_to_text_never_raises_on_anything(html):
    assert isinstance(html_to_text(html), str)


def test_a_sent_from_sentence_is_not_a_signature():
    text = "My parcel was\nSent from the warehouse on Monday\nbut never arrived."
    assert extract_reply(text) == text
    assert extract_reply("Hi\n\nSent from a magnificent torch of pixels") == "Hi"


def test_invisible_characters_are_kept_in_the_text():
    family = "We are 👨\u200d👩\u200d👧 and need help"
    assert extract_reply(f"{family}\n\nOn Mon, Jan 1, 2024 at 9:00 AM, Shop <s@shop.example> wrote:\n> hi") == family
    persian = "می\u200cخواهم سفارشم را لغو کنم"  # ZWNJ is part of the spelling
    assert extract_reply(persian) == persian


def test_html_keeps_joiners_and_drops_padding():
    assert html_to_text("<p>We are 👨&zwj;👩&zwj;👧 &#8203;ok</p><p>می&zwnj;خواهم</p>") == (
        "We are 👨\u200d👩\u200d👧 ok\n\nمی\u200cخواهم"
    )

"""Quote and signature stripping (channels/email/quotes.py) and HTML -> text, against the public
fixture bodies: crisp (expected reply texts in many languages), zapier, talon."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_pathological_input_repeated():
    reply = "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer."
    assert extract_reply(zapier("pathological.txt") * 20) == f"{reply}\n\n{reply}"


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


def test_adversarial_attribution_lines():
    """Lines built to make the attribution patterns backtrack (a cubic blow-up was found here): none
    is an attribution, so everything is kept. bench/hostile.py measures how long they take."""
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
    assert extract_reply(text) == text


# Texts that took seconds to minutes when the stripper was quadratic; each is large enough that it
# would take minutes again. Every one is kept whole: none holds a reply marker the stripper may act on.
HOSTILE_TEXTS = {
    # 32,000 underscore rules, 672 KB: each looked at every line below it (30 s).
    "underscore rules": "\n".join(["_" * 20] * 32_000),
    # The link pattern of "Sent from" lines rescanned the line from every "(" or "<" (6.6 s for 64,000).
    "sent from (((": "Where is my order?\n\nSent from " + "(" * 256_000,
    "sent from <<<": "Where is my order?\n\nSent from " + "<" * 256_000,
    "sent from (http://": "Where is my order?\n\nSent from " + "(http://" * 32_000,
    # Each of these lines ends like an attribution (a colon, a verb, a date and an address).
    "colon lines": "x:\n" * 200_000,
    "date and address lines": "1:00 a@b.cc:\n" * 50_000,
    "verbs": "Hi\nOn Monday " + "wrote " * 100_000 + ":",
    "addresses": "Hi\n1:00 " + "a@" * 200_000 + ":",
    "sent-from lines": "Hi\n" + "Sent from the warehouse\n\n" * 20_000,
    "one line of words": "word " * 200_000,
}


@pytest.mark.parametrize("name", list(HOSTILE_TEXTS))
def test_hostile_texts_are_kept_whole(name):
    text = HOSTILE_TEXTS[name]
    assert extract_reply(text) == text.strip()
    assert strip_quotes(text) == text.strip()


def test_a_closing_after_a_long_line_of_spaces_is_not_matched_over_it():
    # "\s*regards" after "^\s*" took time quadratic in the spaces; a line that long is no closing.
    text = "Where is my order?\n" + " " * 200_000 + "regards!"
    assert extract_reply(text) == text.strip()
    assert extract_reply("Where is my order?\n\nKind   regards,\nAna") == "Where is my order?"


def test_a_marker_past_the_scanned_lines_is_not_looked_for():
    """The first 10,000 lines are looked through for where the quote starts; a text that has none
    there is kept whole, quote included (nothing is lost)."""
    long_reply = "\n".join(f"line {i} of my long list" for i in range(12_000))
    quoted = "\n\nOn Mon, Jan 1, 2024 at 9:00 AM, Shop <s@shop.example> wrote:\n> Where is it?"
    assert extract_reply(long_reply + quoted) == (long_reply + quoted).strip()
    short_reply = "\n".join(f"line {i} of my list" for i in range(9_000))
    assert extract_reply(short_reply + quoted) == short_reply


def test_the_attribution_budget_leaves_real_replies_alone():
    """Attribution matching spends from a budget proportional to the text; a reply full of lines
    that end in a colon next to addresses still has its quote found."""
    reply = "\n".join(f"Order {i} for ana{i}@example.com:\nnot arrived" for i in range(300))
    quoted = "\n\nOn Mon, Jan 1, 2024 at 9:00 AM, Shop <s@shop.example> wrote:\n> Where is it?"
    assert extract_reply(reply + quoted) == reply


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


def test_html_nested_deeper_than_libxml2_reads_keeps_its_text():
    # libxml2 drops everything past 256 levels of nesting: a mail could hide its words that way.
    html = "<div>" * 5_000 + "Where is my order A-1001?" + "</div>" * 5_000
    assert html_to_text(html) == "Where is my order A-1001?"


def test_html_with_a_flood_of_elements_is_read_as_flat_text():
    # 300,000 empty paragraphs: read without layout, in one pass, and the words are all there.
    html = "<style>p {color: red}</style><p>Where is my order?</p>" + "<p></p>" * 300_000 + "<p>It is A-1001.</p>"
    assert html_to_text(html) == "Where is my order?\n\nIt is A-1001."
    assert html_to_text("<p>Caf&eacute; <b>au</b> lait</p>" + "<br>" * 300_000 + "x") == "Café au lait\n\nx"
    # Below the limit, the layout is kept.
    assert html_to_text("<p>Where is my order?</p>" + "<p></p>" * 100 + "<p>It is A-1001.</p>") == (
        "Where is my order?\n\nIt is A-1001."
    )


def test_html_flat_text_leaves_out_scripts_and_hidden_parts():
    hidden = '<div style="DISPLAY: none">preheader</div><p hidden>x</p><script>var a;</script>'
    html = hidden + "<p>Where is my order?</p>" + "<p></p>" * 300_000
    assert html_to_text(html) == "Where is my order?"


def test_html_fallback_text_on_runs_of_unclosed_tags():
    # Too deep for libxml2, so the fallback strips tags: a run of "<" without ">" is not rescanned.
    html = "<div>" * 300 + "Where is my order?" + "<" * 200_000
    text = html_to_text(html)
    assert text.startswith("Where is my order?<") and len(text) == len("Where is my order?") + 200_000


@pytest.mark.parametrize(
    "verb",
    ["wrote", "WROTE", "writes", "said", "a écrit", "Écrit", "escribió", "ha scritto", "scritto", "escreveu", "schrieb",
     "schreef", "skrev", "kirjoitti", "napisał", "Napisała", "pisze", "napsal(a)", "napísal", "написал", "написала",
     "пишет", "написав", "írta", "yazdı", "skrifaði", "rašė", "rakstīja", "kirjutas", "έγραψε", "כתב", "كتب"],
)
def test_every_attribution_verb_is_found(verb):
    # The verb pattern is only tried where one of the verbs' first letters stands: every verb counts.
    assert extract_reply(f"Thanks!\n\nOn Mon, 1 Jan 2024, Ana <ana@example.com> {verb}:\n> Where is it?") == "Thanks!"
    assert extract_reply(f"Thanks!\n\nOn Mon, 1 Jan 2024 Ana {verb}\n> Where is it?") == "Thanks!"

"""What the composer offers, as plain functions on both databases: where a reply goes by default
(the customer's most recent channel that can receive it), and a knowledge-base passage as clean
text (linear in its length, whatever it holds)."""

from __future__ import annotations

import time

from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.ingest.pipeline import ingest
from hub.web.inbox.composer import plain_text, reply_options


def test_a_call_from_a_customer_without_email_has_no_reply_channel_until_they_write_on_one(engine):
    call = ingest(engine, InboundMessage("voice", "call-1", Sender("+44 20 7946 0000", "Paula Caller", "phone"),
                                         "Customer: I was charged twice.", subject="Call: double charge"))
    options = reply_options(engine, call.conversation_id, call.customer_id)
    assert options["channel"] is None and options["choices"] == []
    assert "email" in options["problem"] and options["name"] == "Paula Caller"

    # she writes on Telegram, sharing the number she called from: a reply to the call goes there
    ingest(engine, InboundMessage("telegram", "tg-1", Sender("99887766", "Paula Caller"), "Any news?",
                                  thread=ThreadHints(thread_key="99887766"),
                                  verified_identities=(Sender("+44 20 7946 0000", kind="phone"),)))
    options = reply_options(engine, call.conversation_id, call.customer_id)
    assert options["channel"] == "telegram" and options["recipient"]["address"] == "99887766"


def test_the_most_recent_channel_that_can_receive_comes_first(engine):
    mail = ingest(engine, InboundMessage("email", "<m1@example.com>", Sender("chloe@example.com", "Chloé Martin"),
                                         "Where is my parcel?", subject="Parcel"))
    options = reply_options(engine, mail.conversation_id, mail.customer_id)
    assert (options["channel"], options["recipient"]["address"]) == ("email", "chloe@example.com")
    form = ingest(engine, InboundMessage("webform", "form-1", Sender("dmitri@example.org", "Dmitri Volkov"),
                                         "Which delivery time is right?", subject="Delivery time question"))
    options = reply_options(engine, form.conversation_id, form.customer_id)
    assert (options["channel"], options["recipient"]["address"]) == ("email", "dmitri@example.org")


def test_markdown_becomes_text_a_channel_shows_as_meant():
    md = ("## Delivery times\n- UK standard delivery: **2-4 working days**, free over £40.\n"
          "- Nigeria (Lagos, Abuja): 7-12 working days with DHL Express; Lagos addresses\n"
          "  usually arrive at the faster end.\n\nSee *International shipping* or [our page](https://example.com/ship).\n"
          "1. Pack it\n2. Send it with `code`\n\n---\n> Quoted _words_ here")
    assert plain_text(md) == (
        "Delivery times\n• UK standard delivery: 2-4 working days, free over £40.\n"
        "• Nigeria (Lagos, Abuja): 7-12 working days with DHL Express; Lagos addresses usually arrive at the faster end.\n\n"
        "See International shipping or our page (https://example.com/ship).\n1. Pack it\n2. Send it with code\n\n"
        "Quoted words here")


def test_pathological_markdown_stays_linear():
    sizes = {}
    for n in (5_000, 10_000):
        text = "*" * n + "_a" * n + "[" * n + "](" * n + "**x" * n
        start = time.monotonic()
        plain_text(text)
        sizes[n] = time.monotonic() - start
    # Measured, printed, not asserted on time: it must simply finish (a quadratic regex would not, soon).
    print("plain_text seconds by size:", sizes)

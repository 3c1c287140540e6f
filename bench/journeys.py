#!/usr/bin/env python
"""Customer journeys: does the customer never repeat themselves, and do automatic answers reach
only whom they may?

Scripted journeys go through the real ingest path (emails as raw RFC 822 bytes through the email
channel's parser, Telegram and web-form messages as those channels hand them over), the real
routing worker and the demo SCM back end (the `sql` adapter over the seeded demo database), each
on a fresh SQLite store; what would be delivered is read from the outbox (recipient and text),
which is what the channels send. No clock is faked: each journey takes well under the windows.

    .venv/bin/python bench/journeys.py            # about two hundred journeys, a few minutes
    .venv/bin/python bench/journeys.py --quick    # fewer

It prints, with the targets of the issue:
  follow-ups on another channel that land in the customer's conversation        (target >= 95%)
  unrelated matters glued together                                              (target <= 2%)
  order questions from owners answered automatically, every channel            (target >= 90%)
  answers with order details that reached anyone other than the order's owner  (target 0)
  partly answered messages left open for an agent, the rest marked              (target 100%)
and, for what the figures do not cover, two plain counts: owner questions about orders on hold
(left for an agent by design), and a topic change on another channel within the window that names
nothing (the rule cannot tell it from a follow-up: it joins).
Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, update  # noqa: E402

from adapters.base import UnknownOrder  # noqa: E402
from adapters.config import SqlSettings  # noqa: E402
from adapters.demo_scm import seed_demo_scm  # noqa: E402
from adapters.sql import SqlBackend  # noqa: E402
from channels.email.parse import parse  # noqa: E402
from hub.config.settings import ScmSettings  # noqa: E402
from hub.contract.messages import InboundMessage, Sender, ThreadHints  # noqa: E402
from hub.customers.linking import issue_code  # noqa: E402
from hub.ingest.pipeline import ingest  # noqa: E402
from hub.scm import wording  # noqa: E402
from hub.scm.autoanswer import RoutingWorker  # noqa: E402
from hub.scm.backend import ScmServices  # noqa: E402
from hub.store.db import make_engine  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.models import Conversation, Identity, Message, Outbox, ReplyDraft, utcnow  # noqa: E402

MX = "mx.shop.example"
SUPPORT = "support@shop.example"
conv_t, ident_t, message_t, outbox_t, draft_t = (Conversation.__table__, Identity.__table__, Message.__table__,
                                                Outbox.__table__, ReplyDraft.__table__)

MATTERS = [
    ("My parcel to Lagos", "Hello, my parcel to Lagos has not arrived yet. Can you check?"),
    ("Wrong colour", "I received the kettle in the wrong colour, what should I do?"),
    ("Invoice", "Could you send me the invoice for my last purchase?"),
    ("Damaged box", "The box of my lamp arrived damaged. The lamp seems fine."),
    ("Address change", "I moved last week; please update my delivery address to 12 Marina Road, Lagos."),
]
FOLLOW_UPS = ["I also wrote by email about this, any news?", "Any update on this?", "Hello? Still waiting for an answer.",
              "Just checking on my message from earlier.", "Thanks, and could you hurry please?"]
SECOND_QUESTIONS = ["how long does delivery to Lagos take?", "can I pay by invoice?", "do you ship to Nairobi?",
                    "what is your return policy?"]


@dataclass
class Tally:
    hits: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.hits += bool(ok)
        self.total += 1

    def pct(self) -> str:
        return f"{100 * self.hits / self.total:.1f}% ({self.hits}/{self.total})" if self.total else "n/a"


def raw_mail(sender: str, subject: str, text: str, ext: str, *, reply_to: str | None = None, in_reply_to: str | None = None,
             auth: str | None = None) -> bytes:
    head = [f"From: {sender}", f"To: {SUPPORT}", f"Subject: {subject}", f"Message-ID: {ext}",
            "Content-Type: text/plain; charset=utf-8"]
    if reply_to:
        head.append(f"Reply-To: {reply_to}")
    if in_reply_to:
        head += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    if auth:
        head.insert(0, f"Authentication-Results: {auth}")
    return ("\r\n".join(head) + "\r\n\r\n" + text + "\r\n").encode()


class World:
    """One journey's hub: a fresh store (copied from a migrated template) and the routing worker."""

    def __init__(self, engine, services: ScmServices, path: Path | None = None):
        self.path = path
        self.engine = engine
        self.worker = RoutingWorker(self.engine, services, ScmSettings())
        self.n = 0

    @classmethod
    def fresh(cls, template: Path, workdir: Path, services: ScmServices, n: int) -> World:
        path = workdir / f"j{n}.db"
        shutil.copyfile(template, path)
        return cls(make_engine(f"sqlite:///{path}"), services, path)

    def ext(self) -> str:
        self.n += 1
        return f"<j{self.n}.{random.random():.12f}@client.example>"

    def email(self, sender: str, subject: str, text: str, **kw):
        raw = raw_mail(sender, subject, text, self.ext(), **kw)
        return ingest(self.engine, parse(raw, own_addresses=(SUPPORT,), trusted_authserv_id=MX))

    def telegram(self, user: str, text: str, *, link_code: str | None = None):
        self.n += 1
        return ingest(self.engine, InboundMessage("telegram", f"bot:{user}:{self.n}", Sender(user, "Customer", "telegram"), text,
                                                  thread=ThreadHints(thread_key=f"bot:{user}"), link_code=link_code))

    def webform(self, address: str, subject: str, text: str):
        self.n += 1
        return ingest(self.engine, InboundMessage("webform", f"form-{self.n}", Sender(address, "Customer", "email"), text,
                                                  subject=subject))

    def link_telegram(self, customer_id: int, user: str):
        code, _ = issue_code(self.engine, customer_id)
        return self.telegram(user, f"/start {code}", link_code=code)

    async def route(self) -> None:
        while await self.worker.run_once():
            pass

    def outbox(self) -> list:
        with self.engine.connect() as conn:
            return conn.execute(select(outbox_t.c.channel, outbox_t.c.payload, message_t.c.metadata, message_t.c.conversation_id)
                                .join(message_t, message_t.c.id == outbox_t.c.message_id).order_by(outbox_t.c.id)).all()

    def conversation(self, cid: int):
        with self.engine.connect() as conn:
            return conn.execute(select(conv_t).where(conv_t.c.id == cid)).first()

    def drafts(self, cid: int) -> list:
        with self.engine.connect() as conn:
            return conn.execute(select(draft_t).where(draft_t.c.conversation_id == cid)).all()

    def owner_recipients(self, owner_email: str) -> set[str]:
        """Where the order's owner may be told its details: the order's address, and the addresses of
        the customer who holds it as a verified identity."""
        allowed = {owner_email}
        with self.engine.connect() as conn:
            holder = conn.execute(select(ident_t.c.customer_id).where(ident_t.c.address == owner_email, ident_t.c.verified.is_(True))).scalar()
            if holder is not None:
                allowed |= set(conn.execute(select(ident_t.c.address).where(ident_t.c.customer_id == holder)).scalars())
        return allowed

    def close(self) -> None:
        if self.path is not None:  # a store of its own: gone with the journey
            self.engine.dispose()
            self.path.unlink(missing_ok=True)


# --- the journeys -------------------------------------------------------------------------------


def same_matter(w: World, i: int) -> bool:
    """A matter started on one channel, continued on another; True when it landed in the same conversation."""
    subject, text = MATTERS[i % len(MATTERS)]
    follow = FOLLOW_UPS[i % len(FOLLOW_UPS)]
    address, user = f"cust{i}@example.com", str(700000 + i)
    kind = i % 4
    if kind == 0:  # email, then Telegram (linked by a code, as the hub offers)
        first = w.email(address, subject, text)
        w.link_telegram(first.customer_id, user)
        later = w.telegram(user, follow)
    elif kind == 1:  # email, then the web form with the same address
        first = w.email(address, subject, text)
        later = w.webform(address, subject, follow)
    elif kind == 2:  # Telegram, then a new email from the linked customer
        first = w.telegram(user, text)
        with w.engine.begin() as conn:  # the customer gives their address, an agent adds it
            conn.execute(ident_t.insert().values(customer_id=first.customer_id, kind="email", address=address, verified=False,
                                                 created_at=utcnow()))
        later = w.email(address, subject, follow)
    else:  # web form, then Telegram
        first = w.webform(address, subject, text)
        w.link_telegram(first.customer_id, user)
        later = w.telegram(user, follow)
    return later.conversation_id == first.conversation_id


def unrelated(w: World, i: int, refs: list[str]) -> bool:
    """Two matters that have nothing to do with each other; True when they were glued together."""
    address, user = f"other{i}@example.com", str(800000 + i)
    kind = i % 4
    a, b = refs[i % len(refs)], refs[(i + 3) % len(refs)]
    if kind == 0:  # another order on another channel
        first = w.email(address, f"Order {a}", f"Where is my order {a}?")
        w.link_telegram(first.customer_id, user)
        later = w.telegram(user, f"Separate question: I want to return order {b}.")
    elif kind == 1:  # a new email thread while an email matter is open
        first = w.email(address, "My parcel", "Where is my parcel?")
        later = w.email(address, "Password", "I cannot log in to my account.")
    elif kind == 2:  # the matter went quiet more than a day ago
        first = w.email(address, "My parcel", "Where is my parcel?")
        with w.engine.begin() as conn:
            conn.execute(update(conv_t).where(conv_t.c.id == first.conversation_id).values(last_message_at=utcnow().replace(year=2000)))
        w.link_telegram(first.customer_id, user)
        later = w.telegram(user, "Do you sell gift cards?")
    else:  # two matters open: a chat message cannot tell which, so it starts its own
        first = w.email(address, "My parcel", "Where is my parcel?")
        w.email(address, "Invoice", "Please send the invoice.")
        w.link_telegram(first.customer_id, user)
        later = w.telegram(user, "Do you sell gift cards?")
    return later.conversation_id == first.conversation_id


def topic_change(w: World, i: int) -> bool:
    address, user = f"topic{i}@example.com", str(900000 + i)
    first = w.email(address, "My parcel", "Where is my parcel?")
    w.link_telegram(first.customer_id, user)
    return w.telegram(user, "Do you sell gift cards?").conversation_id == first.conversation_id


async def owner_asks(w: World, i: int, order) -> tuple[bool, bool]:
    """The order's owner asks on one channel; (answered automatically, anything leaked)."""
    owner = order.owner_email
    channel = ("email", "email_authenticated", "telegram_linked", "telegram", "webform")[i % 5]
    question = f"Hello, where is my order {order.ref}?"
    if channel == "email":
        w.email(owner, f"Order {order.ref}", question)
    elif channel == "email_authenticated":
        domain = owner.rsplit("@", 1)[1]
        w.email(owner, f"Order {order.ref}", question, auth=f"{MX}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}")
    elif channel == "telegram_linked":
        first = w.email(owner, "Hello", "Hello, I will write on Telegram.")
        w.link_telegram(first.customer_id, str(600000 + i))
        await w.route()
        w.telegram(str(600000 + i), question)
    elif channel == "telegram":
        w.telegram(str(610000 + i), question)
    else:
        w.webform(owner, f"Order {order.ref}", question)
    await w.route()
    return _reached(w, order)


def _reached(w: World, order) -> tuple[bool, bool]:
    """(the owner got the status automatically, somebody else got it)."""
    status = wording.order_sentence(order).split(";")[0]
    allowed = w.owner_recipients(order.owner_email)
    told_owner = leaked = False
    for row in w.outbox():
        meta, payload = row.metadata or {}, row.payload or {}
        if not meta.get("automatic") or status not in (payload.get("text") or ""):
            continue
        if payload.get("recipient") in allowed:
            told_owner = True
        else:
            leaked = True
    return told_owner, leaked


async def stranger_asks(w: World, i: int, order) -> bool:
    """Somebody else names the order, in one of the ways people try; True when details leaked."""
    owner = order.owner_email
    kind = i % 6
    question = f"Where is order {order.ref}? Please send me the tracking."
    domain = owner.rsplit("@", 1)[1]
    if kind == 0:
        w.email(f"stranger{i}@evil.example", f"Order {order.ref}", question)
    elif kind == 1:
        w.telegram(str(500000 + i), question)
    elif kind == 2:
        w.webform(f"stranger{i}@evil.example", f"Order {order.ref}", question)
    elif kind == 3:  # spoofed From, answers asked to a Reply-To
        w.email(owner, f"Order {order.ref}", question, reply_to=f"stranger{i}@evil.example")
    elif kind == 4:  # spoofed From with a forged Authentication-Results of another server
        w.email(owner, f"Order {order.ref}", question, reply_to=f"stranger{i}@evil.example",
                auth=f"mx.evil.example; dkim=pass header.d={domain}; dmarc=pass header.from={domain}")
    else:  # a stranger's own verified address, someone else's order
        w.email(f"stranger{i}@evil.example", f"Order {order.ref}", question,
                auth=f"{MX}; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example")
    await w.route()
    return _reached(w, order)[1]


async def multi_question(w: World, i: int, sku: str) -> tuple[bool, bool]:
    """(an automatic answer went out, and then: left open with the rest marked)."""
    second = SECOND_QUESTIONS[i % len(SECOND_QUESTIONS)]
    r = w.telegram(str(400000 + i), f"Hi! Is the {sku} in stock, and {second}")
    await w.route()
    answered = any((row.metadata or {}).get("automatic") for row in w.outbox())
    conv = w.conversation(r.conversation_id)
    marked = any(d.reason == "partly_answered" and second.split()[0] in d.text for d in w.drafts(r.conversation_id))
    return answered, answered and conv.status == "open" and marked


# --- running ------------------------------------------------------------------------------------


async def orders_of(services: ScmServices, refs: list[str]) -> list:
    out = []
    for ref in refs:
        try:
            out.append(await services.backend.order_status(ref))
        except UnknownOrder:
            continue
    return [o for o in out if o.owner_email]


async def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="journeys-"))
    try:
        scm_url = seed_demo_scm(workdir / "scm")
        template = workdir / "template.db"
        upgrade(f"sqlite:///{template}")
        services = ScmServices(SqlBackend(SqlSettings(), url=scm_url))
        await services.refresh_catalogue(force=True)
        services.detector.warm_up()
        refs = [f"A{n}" for n in range(1001, 1014)] + [f"SO-{n}" for n in range(4700, 4721)]
        orders = await orders_of(services, refs)
        answerable = [o for o in orders if o.state in wording.ANSWERABLE_STATES]
        on_hold = [o for o in orders if o.state not in wording.ANSWERABLE_STATES]
        skus = [p.sku for p in services.catalogue if getattr(p, "active", True)][:12] or ["KET-BLUE"]
        n = args.per_kind
        t = {k: Tally() for k in ("same", "glued", "owner", "leak", "partial", "multi_answered", "on_hold", "topic")}
        by_channel: dict[str, Tally] = defaultdict(Tally)
        counter = 0

        def world() -> World:
            nonlocal counter
            counter += 1
            return World.fresh(template, workdir, services, counter)

        started = time.monotonic()
        for i in range(n):
            w = world()
            t["same"].add(same_matter(w, i))
            w.close()
        for i in range(n):
            w = world()
            t["glued"].add(unrelated(w, i, [o.ref for o in orders]))
            w.close()
        for i in range(max(4, n // 5)):
            w = world()
            t["topic"].add(topic_change(w, i))
            w.close()
        for i in range(n):
            w = world()
            order = answerable[i % len(answerable)]
            told, leaked = await owner_asks(w, i, order)
            t["owner"].add(told)
            by_channel[("email", "email (authenticated)", "telegram (linked)", "telegram", "webform")[i % 5]].add(told)
            t["leak"].add(leaked)
            w.close()
        for i, order in enumerate(on_hold[: max(2, n // 10)]):
            w = world()
            told, leaked = await owner_asks(w, i, order)
            t["on_hold"].add(told)
            t["leak"].add(leaked)
            w.close()
        for i in range(n):
            w = world()
            t["leak"].add(await stranger_asks(w, i, orders[i % len(orders)]))
            w.close()
        for i in range(max(4, n // 2)):
            w = world()
            answered, left_open = await multi_question(w, i, skus[i % len(skus)])
            t["multi_answered"].add(answered)
            if answered:
                t["partial"].add(left_open)
            w.close()
        await services.close()
        return {"tallies": t, "by_channel": by_channel, "seconds": time.monotonic() - started, "journeys": counter}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def report(res: dict) -> None:
    t = res["tallies"]
    rows = [
        ("follow-ups on another channel in the same conversation", t["same"].pct(), ">= 95%",
         t["same"].total and t["same"].hits / t["same"].total >= 0.95),
        ("unrelated matters glued together", t["glued"].pct(), "<= 2%", t["glued"].total and t["glued"].hits / t["glued"].total <= 0.02),
        ("order questions from owners answered automatically", t["owner"].pct(), ">= 90%",
         t["owner"].total and t["owner"].hits / t["owner"].total >= 0.90),
        ("answers with order details that reached anyone but the owner", f"{t['leak'].hits} of {t['leak'].total} journeys", "0",
         t["leak"].hits == 0),
        ("partly answered messages left open, the rest marked", t["partial"].pct(), "100%",
         t["partial"].total and t["partial"].hits == t["partial"].total),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nCustomer journeys: {res['journeys']} on fresh stores in {res['seconds']:.0f} s (SQLite, demo SCM back end)\n")
    print(f"{'':{width}}  {'measured':>22}  {'target':>8}  met")
    for name, value, target, met in rows:
        print(f"{name:{width}}  {value:>22}  {target:>8}  {'yes' if met else 'NO'}")
    print("\nowners answered automatically, by channel:")
    for channel, tally in res["by_channel"].items():
        print(f"  {channel:24} {tally.pct()}")
    print(f"\nmulti-question messages that got an automatic answer at all: {t['multi_answered'].pct()}")
    print(f"owners asking about an order on hold, answered automatically (by design: no): {t['on_hold'].pct()}")
    print(f"a topic change on another channel within the window naming nothing, joined (the rule cannot tell): {t['topic'].pct()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer journeys (a smoke run)")
    ap.add_argument("--per-kind", type=int, help="journeys per kind (default 40; quick 10)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    args.per_kind = args.per_kind or (10 if args.quick else 40)
    random.seed(20)
    report(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

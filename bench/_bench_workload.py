"""The inbound message mix for the ingest benchmark, with the plan of what each message stores.

Senders (2,000 by default) each have a home channel:
  email    ~45%: customer<i>@example.com; a follow-up replies (In-Reply-To) to the sender's latest
           thread 60% of the time and lands on that conversation, otherwise opens a new one.
  telegram ~35%: user id = chat id (thread_key); every message after the first lands on the chat's
           conversation; a quarter also quote an earlier message of the chat (in_reply_to).
  api      ~20%: half use an email address of the customer<j>@example.com family (so some are the
           same identity, and customer, as an email sender), half a web visitor id; api messages
           carry no thread hints, so each opens a conversation.
Senders are picked with a skew (some write a lot, most a little).

The plan (which identity, which logical conversation, new or existing) lets the raw-SQL ceiling
insert exactly the rows ingest() inserts, and lets the benchmark check the row counts after.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field

from hub.contract.addresses import identity_kind, normalise
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.ingest.threading_rules import clean_subject

FIRST = (
    "Ana Ben Chen Dara Emil Fatima Gustav Hana Ivan Julia Kofi Lena Mateo Nora Omar Priya Quinn Rosa "
    "Sven Tariq Uma Viktor Wen Ximena Yusuf Zoe Aiko Bruno Carmen Dmitri Elena Farid Greta Hugo Ines "
    "Jonas Kira Luca Maya Nils Olga Pavel Rania Sami Tomas Ursula Vera Willem Yara Zaid"
).split()
LAST = (
    "Silva Novak Kowalski Garcia Muller Rossi Dubois Jensen Nakamura Okafor Petrov Haddad Lindqvist "
    "Moreau Fischer Santos Ivanova Tanaka Kim Nguyen Horvat Costa Berg Ortiz Weber Sato Ali Khan "
    "Schmidt Romano Lopez Hansen Murphy Kaur Mensah Yilmaz Popescu Varga Dvorak Ferreira"
).split()
SUBJECTS = (
    "Where is my order {n}",
    "Refund for order {n}",
    "Cannot log in",
    "Invoice {n} is wrong",
    "Change my delivery address",
    "Damaged item in order {n}",
    "Question about my subscription",
    "Cancel order {n}",
    "Password reset does not arrive",
    "Payment failed twice",
)
TEXTS = (
    "Hello, my parcel has not arrived yet and the tracking page has not changed for three days.",
    "Hi! Can you tell me when the item will be back in stock?",
    "I was charged twice for the same order, please refund one of the payments.",
    "Thanks, that solved it.",
    "The app crashes when I open the order history on my phone.",
    "Could you send me the invoice again? I cannot find the email.",
    "ok",
    "I would like to change the delivery address to my office, same city.",
    "Still waiting for an answer on this one, any news?",
    "The product arrived broken, the box was crushed. Photos attached in my next message.",
)


@dataclass(frozen=True)
class Planned:
    msg: InboundMessage
    ident: tuple[str, str]  # (identity kind, normalised address): one identity, one customer
    name: str | None
    conv_key: int  # logical conversation number in this workload
    conv_new: bool  # ingest() opens a conversation for it
    conv_subject: str | None  # the cleaned subject a new conversation gets
    meta_json: str  # what ends up in message.metadata


@dataclass
class Workload:
    planned: list[Planned]
    expected: dict[str, int] = field(default_factory=dict)  # table -> rows after ingesting all
    channel_counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.planned)

    @property
    def messages(self) -> list[InboundMessage]:
        return [p.msg for p in self.planned]


def build_workload(n: int, *, senders: int = 2000, seed: int = 20261123, prefix: str = "w") -> Workload:
    rng = random.Random(seed)
    people = []
    for i in range(senders):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        r = rng.random()
        if r < 0.45:
            people.append(("email", f"customer{i}@example.com", name))
        elif r < 0.80:
            people.append(("telegram", str(700_000_000 + i), name))
        elif rng.random() < 0.5:
            people.append(("api", f"customer{rng.randrange(senders)}@example.com", name))
        else:
            people.append(("api", f"web-{i:05d}-{rng.randrange(16**6):06x}", name))
    # Skewed activity: weight 1/(rank+1)^0.8 in a shuffled order.
    weights = [1 / (k + 1) ** 0.8 for k in range(senders)]
    rng.shuffle(weights)
    picks = rng.choices(range(senders), weights=weights, k=n)

    conv_counter = itertools.count()
    email_threads: dict[int, list[list]] = {}  # sender -> [[conv_key, last_external_id, subject], ...]
    tg_chat: dict[int, list] = {}  # sender -> [conv_key, [external ids]]
    planned: list[Planned] = []
    idents: set[tuple[str, str]] = set()
    channel_counts: dict[str, int] = {}
    for i, s in enumerate(picks):
        channel, address, name = people[s]
        kind = identity_kind(channel, address)
        ident = (str(kind), normalise(kind, address))
        text = rng.choice(TEXTS)
        subject = None
        hints = ThreadHints()
        if channel == "email":
            ext = f"<{prefix}{i}.{s}@mail.example.com>"
            threads = email_threads.setdefault(s, [])
            if threads and rng.random() < 0.6:
                thread = threads[-1] if rng.random() < 0.8 else rng.choice(threads)
                conv_key, conv_new = thread[0], False
                subject = "Re: " + thread[2]
                hints = ThreadHints(in_reply_to=(thread[1],))
                thread[1] = ext
            else:
                conv_key, conv_new = next(conv_counter), True
                subject = rng.choice(SUBJECTS).format(n=rng.randrange(10_000, 99_999))
                threads.append([conv_key, ext, subject])
        elif channel == "telegram":
            ext = f"{prefix}tg{i}"
            chat = tg_chat.get(s)
            in_reply_to: tuple[str, ...] = ()
            if chat is None:
                conv_key, conv_new = next(conv_counter), True
                chat = tg_chat[s] = [conv_key, []]
            else:
                conv_key, conv_new = chat[0], False
                if rng.random() < 0.25:
                    in_reply_to = (rng.choice(chat[1]),)
            chat[1].append(ext)
            hints = ThreadHints(in_reply_to=in_reply_to, thread_key=address)
        else:
            ext = f"{prefix}api{i}"
            conv_key, conv_new = next(conv_counter), True
        msg = InboundMessage(channel, ext, Sender(address, name), text, subject=subject, thread=hints)
        meta = {"in_reply_to": list(hints.in_reply_to)} if hints.in_reply_to else {}
        planned.append(
            Planned(
                msg=msg,
                ident=ident,
                name=name,
                conv_key=conv_key,
                conv_new=conv_new,
                conv_subject=clean_subject(subject),
                meta_json=json.dumps(meta),
            )
        )
        idents.add(ident)
        channel_counts[channel] = channel_counts.get(channel, 0) + 1
    n_conv = next(conv_counter)
    return Workload(
        planned=planned,
        expected={"customer": len(idents), "identity": len(idents), "conversation": n_conv, "message": n},
        channel_counts=channel_counts,
    )


def http_bodies(n: int, *, senders: int = 2000, seed: int = 7, prefix: str = "h") -> list[bytes]:
    """JSON bodies for POST /api/v1/messages (channel api, no thread hints)."""
    rng = random.Random(seed)
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(senders)]
    out = []
    for i in range(n):
        s = rng.randrange(senders)
        body = {
            "channel": "api",
            "external_id": f"{prefix}-{i}",
            "sender": {"address": f"user{s}@example.com", "name": names[s]},
            "text": rng.choice(TEXTS),
        }
        out.append(json.dumps(body).encode())
    return out

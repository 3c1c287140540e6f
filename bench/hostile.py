#!/usr/bin/env python
"""Every channel's parser against hostile input: parse time per MB of crafted worst cases, next to
a plain input of the same size for that channel.

    .venv/bin/python bench/hostile.py                      # 256 KB and 1 MB inputs
    .venv/bin/python bench/hostile.py --sizes-kb 4096      # one size
    .venv/bin/python bench/hostile.py --only email --repeat 5

What is timed is what the channel runs per inbound item, from the bytes it spooled:
  email     channels.email.parse.parse(raw)
  telegram  channels.telegram.parse.parse_update_strict(update), the update as the webhook decoded
            it (JSON decoding is aiohttp's C code, linear, and not the parser's)
  voice     channels.voice.parse_transcript(document) from its bytes, and render() of its turns

The plain input is what a customer really sends, only long: a plain-text mail of prose, a text
message in a group chat (where the text is searched for the bot's name), and a transcript in the
same format as the case (an hour of Amazon Transcribe output is 2.3 MB; a WebVTT
cue costs more than a Transcribe item whatever it holds). Each crafted case is built to hit one step
of a parser where a naive implementation goes quadratic or worse: long lines, many short lines,
deep MIME nesting, thousands of parts, huge headers, long Telegram texts with thousands of entities,
huge transcripts. The web form is not here: its values are refused past 8 times their limit
(20,000 characters for a message) before they are cleaned.

Times are CPU seconds of this process (time.process_time), best of --repeat runs: the machine is
shared, and wall time would measure the neighbours. The ratio is to the plain input of the same
channel and size; the target is that no case is more than 5x its plain input. Figures only:
nothing here asserts; the tests check the outputs of the same kinds of input.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, and bench/email.py is named like the
# stdlib's email package: take the folder off the path before anything imports `email`.
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import base64  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any

_spec = importlib.util.spec_from_file_location("_bench_common", BENCH / "_bench_common.py")
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
loadavg, table = _common.loadavg, _common.table

from channels.email.parse import parse as parse_email  # noqa: E402
from channels.telegram.parse import parse_update_strict  # noqa: E402
from channels.voice import parse_transcript, render  # noqa: E402
from hub.contract.errors import RejectedInput  # noqa: E402

TARGET_RATIO = 5.0
OWN = ("support@shop.example",)
BOT = {"bot": "shop", "bot_username": "ShopHelpBot", "bot_id": 424242}

PROSE = (
    "Hello, I ordered a pair of walking boots on the third of March and the parcel has not arrived.\n"
    "The tracking page says it left the warehouse a week ago but nothing has moved since then, and I\n"
    "would like to know whether it is lost or only delayed. My order number is A-1001, paid by card.\n"
    "\n"
)
WORDS = PROSE.replace("\n", " ").split()


@dataclass(frozen=True)
class Case:
    channel: str
    name: str
    build: Callable[[int], Any]  # size in bytes -> the input (about that size)
    baseline: str  # the plain input this case is compared with
    plain: bool = False  # this case is that plain input


def fill(unit: str, size: int, prefix: str = "", suffix: str = "") -> str:
    """prefix + unit repeated + suffix, about `size` characters."""
    return prefix + unit * max(1, (size - len(prefix) - len(suffix)) // max(1, len(unit))) + suffix


# --- email ---------------------------------------------------------------------------------------

HEAD = (
    "From: Ana Lima <ana@example.com>\r\nTo: support@shop.example\r\nSubject: Where is my order?\r\n"
    "Message-ID: <m1@example.com>\r\nDate: Tue, 01 Mar 2011 18:02:00 +0100\r\nMIME-Version: 1.0\r\n"
)


def mail(body: str, ctype: str = "text/plain; charset=utf-8", extra: str = "", head: str = HEAD) -> bytes:
    return (head + extra + f"Content-Type: {ctype}\r\n\r\n").encode() + body.encode("utf-8", "surrogateescape")


def multipart(parts: list[str], size: int, subtype: str = "mixed") -> bytes:
    """A multipart mail whose parts (raw, headers included) repeat to about `size` bytes."""
    unit = "".join(f"--b\r\n{p}\r\n" for p in parts)
    body = fill(unit, size) + "--b--\r\n"
    return mail(body, f'multipart/{subtype}; boundary="b"')


def nested_multiparts(size: int) -> bytes:
    level = '--b{0}\r\nContent-Type: multipart/mixed; boundary="b{1}"\r\n\r\n'
    out, depth = [], 0
    while sum(map(len, out)) < size - 200:
        out.append(level.format(depth, depth + 1))
        depth += 1
    body = "".join(out) + f"--b{depth}\r\nContent-Type: text/plain\r\n\r\nWhere is my order?\r\n"
    return mail(body, 'multipart/mixed; boundary="b0"')


def nested_messages(size: int) -> bytes:
    level = "Content-Type: message/rfc822\r\n\r\n"
    return mail(fill(level, size - 40) + "\r\nWhere is my order?\r\n", "message/rfc822")


def recovered_multiparts(size: int) -> bytes:
    """Multiparts whose declared boundary matches nothing, nested: each is recovered by parsing
    its body again."""
    level = '--r{0}\r\nContent-Type: multipart/mixed; boundary="wrong{0}"\r\n\r\n'
    body, depth = [], 0
    while sum(map(len, body)) < size // 2:
        body.append(level.format(depth))
        depth += 1
    text = fill(PROSE, size // 2)
    return mail("".join(body) + text, 'multipart/mixed; boundary="wrong"')


def email_cases() -> list[Case]:
    c = []

    def add(name: str, build: Callable[[int], bytes], plain: bool = False) -> None:
        c.append(Case("email", name, build, "plain mail", plain))

    add("plain mail: text/plain prose", lambda s: mail(fill(PROSE, s)), plain=True)
    add("plain mail, multipart/alternative", lambda s: multipart(
        [f"Content-Type: text/plain; charset=utf-8\r\n\r\n{PROSE * 30}",
         "Content-Type: text/html; charset=utf-8\r\n\r\n" + "".join(f"<p>{p}</p>\r\n" for p in PROSE.split("\n") * 30)],
        s, "alternative"))
    # Long lines.
    add("long line: words", lambda s: mail(fill("word ", s)))
    add("long line: 'Sent from (((...'", lambda s: mail(fill("(", s, "Hi\n\nSent from ")))
    add("long line: 'Sent from <<<...'", lambda s: mail(fill("<", s, "Hi\n\nSent from ")))
    add("long line: spaces then a word", lambda s: mail(fill(" ", s, "Hi\n", "regards!")))
    add("long line: 'wrote wrote ... :'", lambda s: mail(fill("wrote ", s, "Hi\nOn Monday ", ":")))
    add("long line: 'a@a@a@...:'", lambda s: mail(fill("a@", s, "Hi\n1:00 ", ":")))
    add("long line: HTML-only mail", lambda s: mail(fill("<p>" + PROSE.replace("\n", " ") + "</p>", s), "text/html; charset=utf-8"))
    add("long line: base64 attachment", lambda s: multipart(
        ["Content-Type: text/plain\r\n\r\nThe invoice is attached.",
         "Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         + base64.b64encode(b"%PDF" * (s // 6)).decode()], s))
    # Many short lines.
    add("short lines: empty", lambda s: mail(fill("\n", s, "Hi\n", "Ana")))
    add("short lines: 'a'", lambda s: mail(fill("a\n", s)))
    add("short lines: 'x:' (attribution ends)", lambda s: mail(fill("x:\n", s)))
    add("short lines: '1:00 a@b.cc:'", lambda s: mail(fill("1:00 a@b.c:\n", s)))
    add("short lines: '_____' rules", lambda s: mail(fill("_" * 20 + "\n", s)))
    add("short lines: '--' delimiters", lambda s: mail(fill("--\n", s, "Hi\n")))
    add("short lines: '> q' quotes", lambda s: mail(fill("> q\n", s, "Hi\n")))
    add("short lines: quote/answer", lambda s: mail(fill("> q\na\n", s, "Hi\n")))
    add("short lines: 'Sent from the ...'", lambda s: mail(fill("Sent from the warehouse\n\n", s, "Hi\n")))
    add("short lines: 'From: a' headers", lambda s: mail(fill("From: a\n", s, "Hi\n")))
    add("short lines: format=flowed 'a '", lambda s: mail(fill("a \n", s), "text/plain; charset=utf-8; format=flowed"))
    add("short lines: format=flowed '> a '", lambda s: mail(fill("> a \n", s), "text/plain; format=flowed; delsp=yes"))
    add("short lines: HTML <p> elements", lambda s: mail(fill("<p>", s), "text/html"))
    add("short lines: HTML nested <div>", lambda s: mail(fill("<div>", s, "", "x"), "text/html"))
    add("short lines: HTML '<' without '>'", lambda s: mail(fill("<", s, "<!--"), "text/html"))
    # MIME structure.
    add("MIME: nested multiparts", nested_multiparts)
    add("MIME: nested message/rfc822", nested_messages)
    add("MIME: recovered multiparts", recovered_multiparts)
    add("MIME: text parts", lambda s: multipart(["Content-Type: text/plain\r\n\r\nWhere is it?"], s))
    add("MIME: attachments", lambda s: multipart(
        ["Content-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo="], s))
    add("MIME: 8-bit parts, no charset", lambda s: multipart(
        ["Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nO\xf9 est ma commande \xe0 B\xe9ziers ?"], s))
    add("MIME: delivery-status blocks", lambda s: mail(
        fill("--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
             "Final-Recipient: rfc822; a@b.c\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n", s) + "--b--\r\n",
        'multipart/report; report-type=delivery-status; boundary="b"',
        head=HEAD.replace("Ana Lima <ana@example.com>", "MAILER-DAEMON@mx.example")))
    # Headers.
    add("headers: one To of many addresses", lambda s: mail("Where is my order?", extra="To: " + fill("a@example.com, ", s) + "\r\n"))
    add("headers: many To headers", lambda s: mail("Where is my order?", extra=fill("To: a@example.com\r\n", s)))
    add("headers: many header lines", lambda s: mail("Where is my order?", extra=fill("X-Spam: yes\r\n", s)))
    add("headers: one folded header", lambda s: mail("Where is my order?", extra="X-Long: a" + fill("\r\n a", s) + "\r\n"))
    add("headers: Subject of open encoded words", lambda s: mail(
        "Where is my order?", head=HEAD.replace("Subject: Where is my order?", "Subject: " + fill("=?x?q?a ", s))))
    add("headers: References of many ids", lambda s: mail("Where is my order?", extra="References: " + fill("<a@b> ", s) + "\r\n"))
    add("headers: long Message-ID", lambda s: mail(
        "Where is my order?", head=HEAD.replace("<m1@example.com>", "<" + fill("a", s) + "@x>")))
    add("headers: To in broken syntax", lambda s: mail("Where is my order?", extra='To: "' + fill("--ab", s) + "\r\n"))
    add("bounce: text of empty lines", lambda s: mail(
        fill("\n", s, "Delivery failed.\n", "Message-ID: <x@y>"),
        head=HEAD.replace("Ana Lima <ana@example.com>", "MAILER-DAEMON@mx.example")))
    return c


def run_email(raw: bytes) -> None:
    parse_email(raw, own_addresses=OWN)


# --- Telegram ------------------------------------------------------------------------------------


def update(text: str | None, *, chat: str = "private", **message) -> dict:
    chat_obj = {"id": 12345678, "type": "private"} if chat == "private" else {"id": -100123, "title": "Shop fans", "type": chat}
    msg = {"message_id": 7, "date": 1508709711, "chat": chat_obj,
           "from": {"id": 12345678, "is_bot": False, "first_name": "Ana", "username": "ana"}, "text": text, **message}
    return {"update_id": 1, "message": msg}


def telegram_cases() -> list[Case]:
    c = []

    def add(name: str, build: Callable[[int], dict], plain: bool = False) -> None:
        c.append(Case("telegram", name, build, "text message", plain))

    # In a group the text is searched for the bot's name (is the message meant for the bot?): the
    # dearer of the two plain messages, and the one to compare with. A private text is a few C-level
    # passes over the string (0.1 ms a MB): a ratio to it would measure the timer.
    add("text message in a group: long text", lambda s: update(fill(PROSE, s), chat="group"), plain=True)
    add("text message, private: long text", lambda s: update(fill(PROSE, s)))
    add("text: one line of words", lambda s: update(fill("word ", s)))
    add("text: '/start' and spaces", lambda s: update(fill(" ", s, "/start ", "x" * 70)))
    add("text: NUL and lone surrogates", lambda s: update(fill("a\x00\ud800", s // 8)))
    add("text: emoji (UTF-16 pairs)", lambda s: update(fill("\U0001F600", s // 4)))
    entity = {"type": "mention", "offset": 0, "length": 12}
    per = len(json.dumps(entity)) + 2
    add("group: thousands of mentions", lambda s: update(
        fill("@ShopHelpBo ", s // 3), chat="group", entities=[entity] * ((2 * s // 3) // per)))
    add("group: '@' words, no entities", lambda s: update(fill("@ShopHelpBo ", s), chat="group"))
    add("caption: thousands of entities", lambda s: update(
        None, caption=fill("x", s // 3), photo=[{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
        caption_entities=[{"type": "bold", "offset": 1, "length": 1}] * ((2 * s // 3) // 45)))
    add("unknown content keys", lambda s: update(None, **{f"k{i}": 1 for i in range(s // 12)}))
    add("forwarded, deep origin", lambda s: update(fill(PROSE, s // 2), forward_origin=_deep(min(400, s // 20))))
    return c


def _deep(depth: int) -> dict:
    node: dict = {"type": "user"}
    for _ in range(depth):
        node = {"type": "user", "sender_user": node}
    return node


def run_telegram(update: dict) -> None:
    parse_update_strict(update, **BOT)


# --- voice ---------------------------------------------------------------------------------------


def transcribe(size: int, *, words_per_turn: int = 14, speakers: int = 2, label: str = "spk_{}") -> bytes:
    """An Amazon Transcribe JSON of about `size` bytes: a dialogue, speaker labels on the items."""
    items, words, t, n = [], [], 0.0, 0
    approx = 0
    while approx < size * 0.85:
        word = WORDS[n % len(WORDS)]
        speaker = label.format((n // words_per_turn) % speakers)
        item = {"type": "pronunciation", "start_time": f"{t:.2f}", "end_time": f"{t + 0.3:.2f}",
                "alternatives": [{"confidence": "0.99", "content": word.strip(",.")}], "speaker_label": speaker}
        items.append(item)
        words.append(word)
        approx += 150 + len(speaker)
        if word.endswith((",", ".")):
            items.append({"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": word[-1]}],
                          "speaker_label": speaker})
            approx += 90
        t += 0.4
        n += 1
    doc = {"jobName": "call", "results": {"transcripts": [{"transcript": " ".join(words)}], "items": items,
                                          "language_code": "en-US"}, "status": "COMPLETED"}
    return json.dumps(doc).encode()


def voice_cases() -> list[Case]:
    c = []

    def add(name: str, baseline: str, build: Callable[[int], bytes | str], plain: bool = False) -> None:
        c.append(Case("voice", name, build, baseline, plain))

    # Each format against a plain transcript in the same format: a WebVTT cue costs more than a
    # Transcribe item whatever is in it.
    add("Transcribe JSON: a call", "Transcribe JSON", transcribe, plain=True)
    add("Transcribe: one speaker, one turn", "Transcribe JSON", lambda s: transcribe(s, words_per_turn=10**9))
    add("Transcribe: a new speaker every word", "Transcribe JSON", lambda s: transcribe(s, words_per_turn=1, speakers=10**9))
    add("Transcribe: 1,000-char shared labels", "Transcribe JSON", lambda s: transcribe(s, label="spk_{}" + "x" * 1000))
    add("JSON: deeply nested", "Transcribe JSON", lambda s: ("[" * min(s // 2, 100_000) + "]" * min(s // 2, 100_000)).encode())
    add("text transcript: a dialogue", "text", lambda s: fill(
        "[00:03] Agent: Thank you for calling, how can I help?\n[00:07] Customer: " + PROSE.replace("\n", " ") + "\n", s).encode(),
        plain=True)
    add("text: one turn of many lines", "text", lambda s: fill("and then it was late\n", s, "Agent: hello\n").encode())
    add("text: lines of spaces", "text", lambda s: fill(" " * 200 + "x:\n", s, "Agent: hello\n").encode())
    add("text: one long line", "text", lambda s: fill("word ", s, "Customer: ").encode())
    add("text: index then empty lines (SRT?)", "text", lambda s: fill("\n", s, "1", "Agent: x").encode())
    add("WebVTT: a meeting", "WebVTT", lambda s: fill(
        "00:00:01.000 --> 00:00:04.000\n<v Ana Lima>Where is my order? It left the warehouse a week ago.\n\n", s, "WEBVTT\n\n").encode(),
        plain=True)
    add("WebVTT: one cue of many lines", "WebVTT", lambda s: fill("where is it\n", s, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n", "\n").encode())
    add("WebVTT: '<v' spans never closed", "WebVTT", lambda s: fill("<v a", s, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n", "\n").encode())
    add("WebVTT: tags never closed", "WebVTT", lambda s: fill("<", s, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n", "\n").encode())
    return c


def run_voice(data: bytes) -> None:
    try:
        transcript = parse_transcript(data)
    except RejectedInput:
        return
    render(transcript.turns)


RUNNERS: dict[str, Callable[[Any], None]] = {"email": run_email, "telegram": run_telegram, "voice": run_voice}


def input_size(value: Any) -> int:
    return len(value) if isinstance(value, (bytes, str)) else len(json.dumps(value))


def cpu_seconds(fn: Callable[[Any], None], value: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(value)
        best = min(best, time.process_time() - start)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes-kb", default="256,1024", help="input sizes in KB, comma-separated (default 256,1024)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept (default 3)")
    ap.add_argument("--only", choices=sorted(RUNNERS), action="append", help="only these channels")
    args = ap.parse_args()

    sizes = [int(x) * 1024 for x in args.sizes_kb.split(",") if x.strip()]
    cases = [c for c in email_cases() + telegram_cases() + voice_cases() if not args.only or c.channel in args.only]
    load = loadavg()
    print(f"bench/hostile.py: Python {platform.python_version()}, {len(cases)} cases, sizes {args.sizes_kb} KB, "
          f"best of {args.repeat} (CPU time); load average {', '.join(f'{x:.1f}' for x in load) if load else 'n/a'}")
    over: list[str] = []
    worst: tuple[float, str] = (0.0, "")
    for size in sizes:
        rows = []
        plain: dict[str, float] = {}
        for case in sorted(cases, key=lambda c: not c.plain):  # the plain inputs first
            value = case.build(size)
            n = input_size(value)
            seconds = cpu_seconds(RUNNERS[case.channel], value, args.repeat)
            per_mb = seconds / (n / 1_048_576)
            if case.plain:
                plain[case.baseline] = per_mb
            ratio = per_mb / plain[case.baseline] if plain.get(case.baseline) else float("nan")
            flag = "OVER" if ratio > TARGET_RATIO else ""
            if flag:
                over.append(f"{case.channel} / {case.name} at {size // 1024} KB ({ratio:.1f}x)")
            if not case.plain and ratio > worst[0]:
                worst = (ratio, f"{case.channel} / {case.name} at {size // 1024} KB")
            rows.append((case.channel, case.baseline, not case.plain, [
                case.channel, ("= " if case.plain else "  ") + case.name, f"{n / 1024:,.0f} KB", f"{seconds * 1000:,.1f}",
                f"{per_mb:.3f}", "plain" if case.plain else f"{ratio:.1f}x", flag]))
        rows.sort(key=lambda r: r[:3])
        print(f"\nInputs of about {size // 1024} KB ('=' marks the plain input each case below it is compared with)")
        print(table(["channel", "case", "input", "CPU ms", "s/MB", "vs plain", ""], [r[3] for r in rows], align="llrrrrl"))
    print()
    print(f"Worst case: {worst[1]}, {worst[0]:.1f}x its plain input.")
    if over:
        print(f"OVER {TARGET_RATIO:g}x plain in {len(over)} case(s):")
        for line in over:
            print(f"  {line}")
    else:
        print(f"Every case is within {TARGET_RATIO:g}x of its plain input of the same size.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

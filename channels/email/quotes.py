"""The new part of a reply: quoted history and signatures stripped from a plain-text body.

Markers, found line by line:
- attribution lines in many languages ("On <date>, <name> wrote:", "Le ... a écrit :",
  "Am ... schrieb ...:", "W dniu ... napisał:", "... 写道：", "<date>, <name> <addr>:"), also when a
  mail client wrapped them over up to four lines;
- Outlook-style header blocks ("From: / Sent: / To: / Subject:" in many languages, 发件人/发送时间,
  От/Отправлено, Von/Gesendet...), with the separator line above them;
- "-----Original Message-----" separators in many languages;
- "> " quoted lines;
- (signatures) "-- " delimiters, "Sent from my iPhone"-style lines, and a closing "Regards," block.

A reply interleaved with its quotes ("> question" / answer / "> question" / answer) keeps the
quotes it answers: cutting at the first quote would lose the answers. A forward keeps what it
forwards: that is the content. When stripping would leave nothing, the whole text is kept.

The work is linear in the text, whatever it holds. No pattern here can backtrack over its input
(possessive quantifiers where repetitions meet, bounded windows), only lines up to
_MAX_MARKER_LINE characters can be markers, only the first _MAX_SCAN_LINES lines are looked
through, and the multi-line attribution matching, the costly part, spends from a budget
proportional to the text. No real reply comes near these limits; a text built to exhaust them is
kept as it is from where they stop, so nothing is lost.

No library does this well enough: mail-parser-reply matched 20 of the 50 reply texts of the crisp
fixtures, talon is unmaintained since 2017 and email-reply-parser knows English only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u202a-\u202e]")
# Trailing whitespace of a line. A match can only start where a run of whitespace starts, so runs
# inside a line are looked at once, not once per character.
_TRAILING_SPACE = re.compile(r"(?<![^\S\n])[^\S\n]++(?=\n|\Z)")

# The limits (see the module docstring). Real attribution lines, header lines, separators and
# signature lines are far shorter.
_MAX_MARKER_LINE = 1000
_MAX_ATTRIBUTION = 600
_MAX_SCAN_LINES = 10_000
# Characters of attribution windows matched per character of text, and a floor for short texts
# (a window costs its length and 50 more: each is matched by a handful of patterns).
_ATTRIBUTION_BUDGET_PER_CHAR = 2
_ATTRIBUTION_BUDGET_FLOOR = 200_000
# An attribution's verb is within this many characters of its end (it is followed by at most a
# name and an address of 200 characters); only that tail is searched.
_VERB_TAIL = 320

# Verbs that end an attribution line ("... wrote:"), many languages.
_VERB = (
    r"(?:wrote|writes|said|a\s+[ée]crit|[ée]crit|escribi[óo]|(?:ha\s+)?scritto|escreveu|schrieb|schreef|skrev|"
    r"kirjoitti|napisa[łl](?:\(a\)|a)?|pisze|napsal(?:\(a\)|a)?|nap[ií]sal(?:\(a\)|a)?|написал(?:\(а\)|а)?|пишет|"
    r"написав|написала|írta|yazdı|skrifaði|rašė|rakstīja|kirjutas|έγραψε|כתב|كتب)"
)
# The first letters of the verbs above: checked before the alternatives are tried at a position
# (about four times faster on text that has no verb).
_VERB_START = r"(?=[wsaéehknpíyrнпέכك])"
# "<verb>:" / "<verb>" / "<verb> ----" / "<verb> Name <addr>:" at the end of the window.
_ENDS_WITH_VERB = re.compile(
    r"(?<![\w])" + _VERB_START + _VERB + r"(?:\s*+[:：]?+\s*+-*+|\s++[^\n]{1,200}?[:：])\s*+$", re.I | re.U
)
# The verb as the very last word of a line (most lines that do not end with ":" are decided by this).
_VERB_AT_END = re.compile(r"(?<![\w])" + _VERB_START + _VERB + r"\Z", re.I | re.U)
# Anything a window must contain somewhere to be an attribution: a verb, a CJK attribution word, an
# address. A window without any is decided without matching the patterns above.
_ATTRIBUTION_HINT = re.compile(r"(?=[wsaéehknpíyrнпέכك@m写寫書の작])(?:" + _VERB + r"|@|mailto:|写道|寫道|書きました|のメッセージ|작성)", re.I | re.U)
# Words an attribution line starts with.
_LEAD = re.compile(
    r"^(?:on|le|el|il|em|am|op|den|dne|w\s+dniu|dnia|in\s+data|pe|ma|ti|ke|to|la|su|"
    r"пн|вт|ср|чт|пт|сб|вс|в|у|dňa|dana)\b", re.I | re.U
)
_CJK_ATTRIBUTION = re.compile(r"(?:写道|寫道|書きました|のメッセージ|작성|님이\s*+작성|wrote)\s*+[:：]?+\s*+$")
_CJK_ENDINGS = ("写道", "寫道", "書きました", "のメッセージ", "작성", "wrote")
_HAS_DATE_OR_ADDR = re.compile(r"\d|@")
# "<date/time> ... Name <addr>:" (Gmail in many locales, Yandex, mail.ru, Hungarian, Russian...).
# Two bounded searches, not one pattern: ".{0,300}?" before an address pattern backtracks
# cubically on lines like "1:00 a@a@a@...:".
_DATE_TOKEN = re.compile(r"\d{1,2}[:.h]\d{2}|\b(?:19|20)\d{2}\b")
_ADDR_COLON_END = re.compile(
    r"(?:<[^<>\s@]++@[^<>\s]++>|\[mailto:[^\]\s]++\]|\(\s*+[^()\s@]++@[^()\s]++\s*+\)|(?<!\S)[^\s<>()@]++@[^\s<>()@]+\.[a-z]{2,}+)"
    r"\s*+>?+\s*+[:：]\s*+$",
    re.I | re.U,
)


def _date_addr_colon(text: str) -> bool:
    tail = text[-160:]
    if not tail.rstrip().endswith((":", "：")):
        return False
    match = _ADDR_COLON_END.search(tail)
    return match is not None and _DATE_TOKEN.search(text, 0, len(text) - len(tail) + match.start()) is not None


_DATE_START = re.compile(r"^\W{0,3}(?:\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}:\d{2}|(?:19|20)\d{2}\b)")
_LEADING_DECOR = re.compile(r"^[\s*_-]+")

_FROM_KEYS = (
    r"from|de|von|van|da|fra|från|fran|od|от|від|lähettäjä|feladó|kimden|odesílatel|afzender|remitente|"
    r"mittente|expéditeur|expediteur|发件人|發件人|寄件者|寄件人|差出人|보낸\s*사람|보낸사람|message\s+du"
)
_OTHER_KEYS = (
    r"sent|date|to|subject|cc|bcc|reply-to|envoyé(?:\s+le)?|envoye(?:\s+le)?|à|a|objet|copie(?:\s+à)?|sujet|"
    r"gesendet|datum|an|betreff|kopie|verzonden|aan|onderwerp|inviato|data|oggetto|enviado|enviada(?:\s+em)?|"
    r"fecha|para|asunto|assunto|sendt|dato|til|emne|kopi|skickat|till|ämne|wysłano|do|temat|dw|"
    r"отправлено|дата|кому|тема|копия|відправлено|надіслано|копія|lähetetty|päivämäärä|vastaanottaja|aihe|"
    r"elküldve|címzett|tárgy|gönderildi|tarih|kime|konu|odesláno|komu|předmět|"
    r"发送时间|發送時間|日期|收件人|主题|主題|抄送|寄件日期|收件者|主旨|副本|送信日時|宛先|件名|日付|"
    r"보낸\s*날짜|받는\s*사람|제목|참조"
)
_HEADER_LINE = re.compile(
    r"^[\s*>]*+(?:(?P<from>" + _FROM_KEYS + r")|(?P<other>" + _OTHER_KEYS + r"))[\s*]*+[:：]", re.I | re.U
)
# A header line's name and colon are within its first characters; only those are matched.
_HEADER_PREFIX = 200

_ORIGINAL_WORDS = (
    r"original\s+message|original-message|reply\s+message|ursprüngliche\s+nachricht|message\s+d'origine|"
    r"mensaje\s+original|messaggio\s+originale|mensagem\s+original|oorspronkelijk\s+bericht|"
    r"oprindelig\s+besked|opprinnelig\s+melding|ursprungligt\s+meddelande|wiadomość\s+oryginalna|"
    r"oryginalna\s+wiadomość|исходное\s+сообщение|исходное\s+письмо|původní\s+zpráva|alkuperäinen\s+viesti|"
    r"eredeti\s+üzenet|orijinal\s+mesaj|原始邮件|原始郵件|原始信件|元のメッセージ|원본\s*메시지|"
    r"mensagem\s+original|pôvodná\s+správa"
)
_FORWARD_WORDS = (
    r"forwarded\s+message|weitergeleitete\s+nachricht|message\s+transf[ée]r[ée]|mensaje\s+reenviado|"
    r"messaggio\s+inoltrato|mensagem\s+encaminhada|doorgestuurd\s+bericht|videresendt\s+(?:besked|melding)|"
    r"vidarebefordrat\s+meddelande|przekazana\s+wiadomość|wiadomość\s+przekazana|пересылаемое\s+сообщение|"
    r"пересланное\s+сообщение|přeposlaná\s+zpráva|välitetty\s+viesti|továbbított\s+üzenet|iletilen\s+mesaj|"
    r"转发的邮件|轉寄的郵件|転送されたメッセージ|전달된\s*메시지"
)
_ORIGINAL_SEP = re.compile(r"^\s*+[-_=*~]{2,}+\s*+(?:" + _ORIGINAL_WORDS + r")\s*+:?+\s*+[-_=*~]*+\s*+$", re.I | re.U)
_FORWARD_SEP = re.compile(
    r"^\s*+(?:[-_=*~]{2,}+\s*+(?:" + _FORWARD_WORDS + r")\s*+:?+\s*+[-_=*~]*+|"
    r"(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée]|inicio\s+del\s+mensaje\s+reenviado|"
    r"inizio\s+messaggio\s+inoltrato|in[íi]cio\s+da\s+mensagem\s+reencaminhada)\s*+:)\s*+$",
    re.I | re.U,
)
_RULE = re.compile(r"^\s*(?:[-_=*~—–]\s*){2,}$")

# Lines are right-stripped before matching: "-- " (RFC 3676) arrives as "--".
_SIG_DELIM = re.compile(r"^(?:--|__)$")
_LONG_UNDERSCORES = re.compile(r"^_{20,}\s*$")
_MOBILE = re.compile(
    r"^\s*+(?:sent\s+(?:from|with|via|using)\s|get\s+outlook\s+for\s|envoy[ée]\s+(?:de\s+mon|depuis|à\s+partir\s+de|avec)\s|"
    r"t[ée]l[ée]charger\s+outlook\s+pour\s|von\s+meinem\s.{1,60}\sgesendet|gesendet\s+(?:von|mit|vom)\s|"
    r"enviado\s+(?:desde|do\s+meu|de\s+mi|a\s+partir\s+do)\s|inviato\s+da\s|verzonden\s+(?:vanaf|met|van)\s|"
    r"verstuurd\s+vanaf\s|sendt\s+fra\s|skickat\s+från\s|wysłane\s+z\s|отправлено\s+(?:с|из)\s|"
    r"відправлено\s+з\s|odesláno\s+z\s|lähetetty\s|发自我的|发自\s|来自我的|從我的|从我的|"
    r"iphoneから送信|ipadから送信|my\s+iphoneから送信)",
    re.I | re.U,
)
# Links in a "Sent from" line: <...>, (... http://... ), a bare URL. "<" and "(" stop at the next
# "<" or "(", and the parenthesis must close before a link is looked for, so no start rescans the line.
_URLISH = re.compile(r"<[^<>]*+>|\((?=[^()]*+\))[^()]*https?://[^()]*+\)|https?://\S++")
_VALEDICTION = re.compile(
    r"^\s*+(?:(?:best|kind|warm|warmest|kindest|many|with|best\s+and\s+kind|with\s+kind|yours)?\s*regards|"
    r"cheers|best\s+wishes|bien\s+[àa]\s+vous|(?:\w+\s+)?cordialement|bonne\s+(?:journ[ée]e|soir[ée]e)|"
    r"mit\s+freundlichen\s+gr[üu](?:ß|ss)en|freundliche\s+gr[üu](?:ß|ss)e|viele\s+gr[üu](?:ß|ss)e|"
    r"liebe\s+gr[üu](?:ß|ss)e|beste\s+gr[üu](?:ß|ss)e|mfg|lg|met\s+vriendelijke\s+groet(?:en)?|"
    r"vriendelijke\s+groet(?:en)?|(?:un\s+)?saludos?(?:\s+cordiales)?|atentamente|cordiali\s+saluti|"
    r"distinti\s+saluti|atenciosamente|cumprimentos|pozdrawiam|z\s+poważaniem|с\s+уважением|"
    r"med\s+vänlig\s+hälsning|vänliga\s+hälsningar|med\s+venlig\s+hilsen|venlig\s+hilsen|"
    r"med\s+vennlig\s+hilsen|vennlig\s+hilsen|mvh|ystävällisin\s+terveisin|terveisin|üdvözlettel|"
    r"s\s+pozdravem|saygılarımla|此致|敬上|祝好)\s*+[,.!！]*+\s*+$",
    re.I | re.U,
)


@dataclass(frozen=True)
class _Marker:
    start: int
    kind: str  # "attribution" | "headers" | "original" | "forward" | "quote" | "sig"


class _Budget:
    """Characters of attribution windows the patterns may still be run over."""

    __slots__ = ("left",)

    def __init__(self, text_length: int):
        self.left = _ATTRIBUTION_BUDGET_FLOOR + _ATTRIBUTION_BUDGET_PER_CHAR * text_length

    def spend(self, chars: int) -> bool:
        self.left -= chars
        return self.left >= 0


def _norm(line: str) -> str:
    return _INVISIBLE.sub("", line)


def _is_quoted(line: str) -> bool:
    stripped = line.lstrip()
    # ">:" alone ends a wrapped attribution ("... <addr\n>:"), it is not a quote.
    return stripped.startswith(">") and stripped.rstrip() not in (">:", ">：")


def _quoted_flags(lines: list[str], count: int) -> list[bool]:
    """_is_quoted of the first `count` lines (the scan never looks further)."""
    return [_is_quoted(line) for line in lines[:count]]


def _ends_with_verb(text: str) -> bool:
    """_ENDS_WITH_VERB matches: the verb is searched in the tail only (see _VERB_TAIL)."""
    return _ENDS_WITH_VERB.search(text, max(0, len(text) - _VERB_TAIL)) is not None


def _date_addr_colon(text: str) -> bool:
    tail = text[-160:]
    if not tail.rstrip().endswith((":", "：")):
        return False
    match = _ADDR_COLON_END.search(tail)
    return match is not None and _DATE_TOKEN.search(text, 0, len(text) - len(tail) + match.start()) is not None


def _ends_attribution(text: str) -> bool:
    return _ends_with_verb(text) or _CJK_ATTRIBUTION.search(text, max(0, len(text) - 64)) is not None or _date_addr_colon(text)


def _attribution_at(lines: list[str], quoted: list[bool], end: int, budget: _Budget) -> int | None:
    """Start index of an attribution ending at line `end`, or None."""
    last = lines[end].rstrip()
    if not last or len(last) > _MAX_ATTRIBUTION:
        return None
    # The last line must end like an attribution: ":", "-", a CJK attribution word, or the verb.
    if not (
        last.endswith((":", "：", "-"))
        or last.endswith(_CJK_ENDINGS)
        or _VERB_AT_END.search(last, max(0, len(last) - 40)) is not None
    ):
        return None
    if budget.left < 0:
        return None
    first = max(0, end - 3)
    for start in range(end, first - 1, -1):
        if start < end and (not lines[start].strip() or quoted[start]):
            first = start + 1
            break
    # A window holding a line over the limit is too long; that line may still start one, without
    # its decoration ("----- On ... wrote:").
    for start in range(end - 1, first - 1, -1):
        if len(lines[start].strip()) > _MAX_ATTRIBUTION:
            first = start if len(_without_decor(lines[start])) <= _MAX_ATTRIBUTION else start + 1
            break
    windows = []
    for s in range(first, end + 1):
        text = " ".join([_without_decor(lines[s]), *(lines[i].strip() for i in range(s + 1, end + 1))])
        if len(text) <= _MAX_ATTRIBUTION:
            windows.append((s, text))
    if not windows or not budget.spend(len(windows[0][1])):
        return None
    # Every window is a tail of the longest one: without a verb, an attribution word or an address
    # in it, none is an attribution.
    if _ATTRIBUTION_HINT.search(windows[0][1]) is None or not budget.spend(sum(len(text) + 50 for _, text in windows)):
        return None
    ends: dict[int, bool] = {}

    def ends_attribution(s: int, text: str) -> bool:
        if s not in ends:
            ends[s] = _ends_attribution(text)
        return ends[s]

    # An attribution that starts with its lead word ("On", "Le", "Am"...) may span several lines:
    # the longest window that matches wins, so "On <date>, <name>\n<addr>\nwrote:" is cut whole.
    for s, text in windows:
        if _LEAD.match(text) and _ends_with_verb(text):
            return s
    # A window that starts with a date ("02.04.2012 14:20 <name> <addr>\n...> wrote:"): longest.
    for s, text in windows:
        if _DATE_START.match(text) and ends_attribution(s, text):
            return s
    # Otherwise the shortest window that matches, so a sentence above is never swallowed.
    for s, text in reversed(windows):
        if _HAS_DATE_OR_ADDR.search(text) and ends_attribution(s, text):
            return s
    return None


def _without_decor(line: str) -> str:
    decor = _LEADING_DECOR.match(line)
    return (line[decor.end():] if decor else line).strip()


def _header_line(line: str):
    if ":" not in line[:_HEADER_PREFIX] and "：" not in line[:_HEADER_PREFIX]:
        return None
    return _HEADER_LINE.match(line, 0, _HEADER_PREFIX)


def _header_block_at(lines: list[str], quoted: list[bool], start: int) -> bool:
    """An Outlook-style block of quoted-message headers starts at `start`."""
    match = _header_line(lines[start])
    if match is None:
        return False
    has_from = match.group("from") is not None
    count, gaps, i = 1, 0, start + 1
    while i < len(lines) and i <= start + 8 and count < 3:
        line = lines[i]
        if quoted[i]:
            break
        m = _header_line(line)
        if m is not None:
            count += 1
            has_from = has_from or m.group("from") is not None
        elif line.strip() and gaps < 2 and len(line) < 200:
            gaps += 1  # a wrapped value ("<long-address@example.com>")
        else:
            break
        i += 1
    return count >= 2 and has_from


_SENT_GENERIC = re.compile(r"^\s*+sent\s+(?:from|with|via|using)\s+(?!my\b)(\S)", re.I)


def _mobile_at(lines: list[str], i: int, budget: _Budget) -> bool:
    """A "Sent from my iPhone" line (many languages and apps)."""
    line = lines[i]
    if not _MOBILE.match(line):
        return False
    rest = _URLISH.sub("", line).strip()
    if len(rest) > 80 or len(rest.split()) > 9:
        return False
    # "Sent from my desk, it is much easier than my phone." is a sentence, not a signature.
    if re.search(r"[,;!?]|\.\s|\.$", rest):
        return False
    generic = _SENT_GENERIC.match(line)
    if generic and not generic.group(1).isupper() and "http" not in line:
        # "Sent from the warehouse on Monday" may be the customer's sentence: only a signature
        # when nothing of theirs follows (a quote, an attribution or the end does).
        for j in range(i + 1, len(lines)):
            if lines[j].strip():
                following = lines[j : j + 5]
                quoted = [_is_quoted(x) for x in following]
                return quoted[0] or any(_attribution_at(following, quoted, e, budget) == 0 for e in range(len(quoted)))
    return True


def _first_marker(lines: list[str], quoted: list[bool], signatures: bool, limit: int, budget: _Budget) -> _Marker | None:
    """The earliest marker in the first `limit` lines. An attribution ending at line i can start up
    to three lines above it, so the scan goes on three lines past the first marker found."""
    best: _Marker | None = None
    for i in range(limit):
        if best is not None and i > best.start + 3:
            break
        found: _Marker | None = None
        line = lines[i]
        if quoted[i]:
            found = _Marker(i, "quote")
        elif not line.strip() or len(line) > _MAX_MARKER_LINE:
            continue
        elif _ORIGINAL_SEP.match(line):
            found = _Marker(i, "original")
        elif _FORWARD_SEP.match(line):
            found = _Marker(i, "forward")
        elif _header_block_at(lines, quoted, i):
            found = _Marker(i, "headers")
        else:
            start = _attribution_at(lines, quoted, i, budget)
            if start is not None:
                found = _Marker(start, "attribution")
            elif signatures and _is_signature_line(lines, i, budget):
                found = _Marker(i, "sig")
        if found is not None and (best is None or found.start < best.start):
            best = found
    return best


def _is_signature_line(lines: list[str], i: int, budget: _Budget) -> bool:
    line = lines[i]
    if len(line) > _MAX_MARKER_LINE:
        return False
    if _SIG_DELIM.match(line):
        return True
    if line.startswith("_" * 20) and _LONG_UNDERSCORES.match(line) and _short_tail(lines, i + 1, 15):
        return True
    return _mobile_at(lines, i, budget)


def _short_tail(lines: list[str], start: int, max_lines: int) -> bool:
    """At most max_lines non-blank lines from `start` on (counting stops at the first one over)."""
    count = 0
    for i in range(start, len(lines)):
        if lines[i].strip():
            count += 1
            if count > max_lines:
                return False
    return True


def _back_over_rules(lines: list[str], cut: int) -> int:
    """Move a cut up over blank lines and separator rules ("-----", "_____", "====") above it."""
    while cut > 0 and (not lines[cut - 1].strip() or (len(lines[cut - 1]) <= _MAX_MARKER_LINE and _RULE.match(lines[cut - 1]))):
        cut -= 1
    return cut


def _answers(lines: list[str], quoted: list[bool], first_quote: int, limit: int, budget: _Budget) -> tuple[list[tuple[int, int]], int]:
    """Answers written under or between the quoted lines that start at `first_quote` (up to line
    `limit`): their (start, end) line ranges, and how many separate quote blocks there are."""
    answers: list[tuple[int, int]] = []
    blocks = 0
    i, n = first_quote, limit
    in_block = False
    while i < n:
        if quoted[i]:
            if not in_block:
                blocks += 1
                in_block = True
            i += 1
            continue
        # A line glued to a long quoted line above is that line wrapped by a mail client
        # ("> ... Nullam pharetra d" / "ignissim odio?"), not an answer.
        if i > 0 and quoted[i - 1] and lines[i].strip() and len(lines[i - 1]) >= 60:
            while i < n and not quoted[i] and lines[i].strip():
                i += 1
            continue
        j = i
        while j < n and not quoted[j]:
            j += 1
        length, stop = _answer_length(lines[i:j], budget)
        if length > 0:
            answers.append((i, i + length))
            in_block = False
        if stop:
            break  # a new header, a signature: nothing below is an answer
        i = j
    return answers, blocks


def _answer_length(segment: list[str], budget: _Budget) -> tuple[int, bool]:
    """How many lines of an unquoted run under a quote are an answer (0: only blank lines), and
    whether the run ends in a new quoted message or a signature (nothing below is an answer)."""
    quoted = [False] * len(segment)
    last = 0
    for k, line in enumerate(segment):
        if not line.strip():
            continue
        if len(line) <= _MAX_MARKER_LINE and (
            _ORIGINAL_SEP.match(line)
            or _FORWARD_SEP.match(line)
            or _header_block_at(segment, quoted, k)
            or _attribution_at(segment, quoted, k, budget) is not None
            or _is_signature_line(segment, k, budget)
        ):
            return last, True
        last = k + 1
    return last, False


def _lines(text: str) -> list[str]:
    """The lines, right-stripped (in one pass over the text, not one call per line)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _TRAILING_SPACE.search(text):
        text = _TRAILING_SPACE.sub("", text)
    return text.split("\n")


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n")


def _cut(text: str, *, signatures: bool, forwarded: bool) -> str:
    original = _lines(text)
    # Markers are matched without invisible characters (Outlook puts LRMs in its dates); the text
    # kept is the original, where they may matter (ZWJ emoji, ZWNJ in Persian).
    joined = "\n".join(original)
    lines = _INVISIBLE.sub("", joined).split("\n") if _INVISIBLE.search(joined) else original
    limit = min(len(lines), _MAX_SCAN_LINES)
    quoted = _quoted_flags(lines, limit + 9)
    budget = _Budget(len(joined))
    first = _first_marker(lines, quoted, signatures, limit, budget)
    if first is None:
        if limit < len(lines) or not signatures:
            return _join(original)  # a text too long to look through is kept whole
        # Every line was looked at for a signature already: only a closing "Regards," is left.
        return _strip_signature_lines(original, budget, valediction_only=True)
    if first.kind == "forward" or forwarded:
        # Forwarded content is what the customer sends us: keep it.
        return _join(original)
    if first.kind in ("attribution", "quote"):
        # Is the quote answered below it? Only ">"-quoting shows it; after an attribution the
        # quote must start right away (blank lines aside).
        k = first.start
        if first.kind == "attribution":
            k += 1
            while k < limit and not quoted[k] and (
                not lines[k].strip() or lines[k].strip() in (">:", ">：") or _is_attr_tail(lines, quoted, first.start, k, budget)
            ):
                k += 1
        if k < limit and quoted[k]:
            answers, blocks = _answers(lines, quoted, k, limit, budget)
            if answers:
                if blocks == 1 and answers[0][0] > k:
                    # Bottom-posted: one quote, the answer under it. The answer is the new part.
                    kept = original[: _back_over_rules(lines, first.start)]
                    for a, b in answers:
                        kept += [""] + original[a:b] if kept else original[a:b]
                else:
                    # Interleaved: the quotes say what each answer answers; keep them.
                    kept = original[: answers[-1][1]]
                return _strip_signature_lines(kept, budget) if signatures else _join(kept)
    cut = _back_over_rules(lines, first.start)
    kept = original[:cut]
    if signatures:
        return _strip_signature_lines(kept, budget)
    return _join(kept)


def _is_attr_tail(lines: list[str], quoted: list[bool], start: int, k: int, budget: _Budget) -> bool:
    """Line k still belongs to the (wrapped) attribution that starts at `start`."""
    return k <= start + 3 and _attribution_at(lines, quoted, k, budget) == start


def _strip_signature_lines(original: list[str], budget: _Budget, *, valediction_only: bool = False) -> str:
    lines = [_norm(line) for line in original] if any(_INVISIBLE.search(line) for line in original) else original
    end = len(lines)
    if not valediction_only:
        for i in range(end):
            if not _is_quoted(lines[i]) and _is_signature_line(lines, i, budget):
                end = _back_over_rules(lines, i)
                break
    # A closing "Regards," and a few short lines (name, title, phone) under it.
    for i in range(end - 1, max(-1, end - 9), -1):
        if len(lines[i]) <= _MAX_MARKER_LINE and _VALEDICTION.match(lines[i]):
            tail = [line for line in lines[i + 1 : end] if line.strip()]
            if len(tail) <= 6 and all(len(line) <= 80 and not _is_quoted(line) for line in tail):
                end = i
            break
    return _join(original[:end]).rstrip()


def strip_quotes(text: str, *, forwarded: bool = False) -> str:
    """The text without quoted history (signatures kept). Whole text when nothing would remain."""
    result = _cut(text, signatures=False, forwarded=forwarded)
    return result if result.strip() else _join(_lines(text)).strip()


def extract_reply(text: str, *, forwarded: bool = False) -> str:
    """The new content of a message: quoted history and signature stripped. The whole text
    (trimmed) when stripping would leave nothing."""
    result = _cut(text, signatures=True, forwarded=forwarded).strip()
    return result if result else _join(_lines(text)).strip()

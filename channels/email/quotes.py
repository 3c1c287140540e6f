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

No library does this well enough: mail-parser-reply matched 20 of the 50 reply texts of the crisp
fixtures, talon is unmaintained since 2017 and email-reply-parser knows English only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u202a-\u202e]")

# Verbs that end an attribution line ("... wrote:"), many languages.
_VERB = (
    r"(?:wrote|writes|said|a\s+[ée]crit|[ée]crit|escribi[óo]|(?:ha\s+)?scritto|escreveu|schrieb|schreef|skrev|"
    r"kirjoitti|napisa[łl](?:\(a\)|a)?|pisze|napsal(?:\(a\)|a)?|nap[ií]sal(?:\(a\)|a)?|написал(?:\(а\)|а)?|пишет|"
    r"написав|написала|írta|yazdı|skrifaði|rašė|rakstīja|kirjutas|έγραψε|כתב|كتب)"
)
# "<verb>:" / "<verb>" / "<verb> ----" / "<verb> Name <addr>:" at the end of the window.
_ENDS_WITH_VERB = re.compile(
    r"(?<![\w])" + _VERB + r"(?:\s*[:：]?\s*-*|\s+[^\n]{1,200}?[:：])\s*$", re.I | re.U
)
# Words an attribution line starts with.
_LEAD = re.compile(
    r"^(?:on|le|el|il|em|am|op|den|dne|w\s+dniu|dnia|in\s+data|pe|ma|ti|ke|to|la|su|"
    r"пн|вт|ср|чт|пт|сб|вс|в|у|dňa|dana)\b", re.I | re.U
)
_CJK_ATTRIBUTION = re.compile(r"(?:写道|寫道|書きました|のメッセージ|작성|님이\s*작성|wrote)\s*[:：]?\s*$")
_HAS_DATE_OR_ADDR = re.compile(r"\d|@")
# "<date/time> ... Name <addr>:" (Gmail in many locales, Yandex, mail.ru, Hungarian, Russian...).
# Two bounded searches, not one pattern: ".{0,300}?" before an address pattern backtracks
# cubically on lines like "1:00 a@a@a@...:".
_DATE_TOKEN = re.compile(r"\d{1,2}[:.h]\d{2}|\b(?:19|20)\d{2}\b")
_ADDR_COLON_END = re.compile(
    r"(?:<[^<>\s]+@[^<>\s]+>|\[mailto:[^\]\s]+\]|\(\s*[^()\s]+@[^()\s]+\s*\)|(?<!\S)[^\s<>()@]+@[^\s<>()@]+\.[a-z]{2,})"
    r"\s*>?\s*[:：]\s*$",
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
    r"^[\s*>]*(?:(?P<from>" + _FROM_KEYS + r")|(?P<other>" + _OTHER_KEYS + r"))[\s*]*[:：]", re.I | re.U
)

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
_ORIGINAL_SEP = re.compile(r"^\s*[-_=*~]{2,}\s*(?:" + _ORIGINAL_WORDS + r")\s*:?\s*[-_=*~]*\s*$", re.I | re.U)
_FORWARD_SEP = re.compile(
    r"^\s*(?:[-_=*~]{2,}\s*(?:" + _FORWARD_WORDS + r")\s*:?\s*[-_=*~]*|"
    r"(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée]|inicio\s+del\s+mensaje\s+reenviado|"
    r"inizio\s+messaggio\s+inoltrato|in[íi]cio\s+da\s+mensagem\s+reencaminhada)\s*:)\s*$",
    re.I | re.U,
)
_RULE = re.compile(r"^\s*(?:[-_=*~—–]\s*){2,}$")

# Lines are right-stripped before matching: "-- " (RFC 3676) arrives as "--".
_SIG_DELIM = re.compile(r"^(?:--|__)$")
_LONG_UNDERSCORES = re.compile(r"^_{20,}\s*$")
_MOBILE = re.compile(
    r"^\s*(?:sent\s+(?:from|with|via|using)\s|get\s+outlook\s+for\s|envoy[ée]\s+(?:de\s+mon|depuis|à\s+partir\s+de|avec)\s|"
    r"t[ée]l[ée]charger\s+outlook\s+pour\s|von\s+meinem\s.{1,60}\sgesendet|gesendet\s+(?:von|mit|vom)\s|"
    r"enviado\s+(?:desde|do\s+meu|de\s+mi|a\s+partir\s+do)\s|inviato\s+da\s|verzonden\s+(?:vanaf|met|van)\s|"
    r"verstuurd\s+vanaf\s|sendt\s+fra\s|skickat\s+från\s|wysłane\s+z\s|отправлено\s+(?:с|из)\s|"
    r"відправлено\s+з\s|odesláno\s+z\s|lähetetty\s|发自我的|发自\s|来自我的|從我的|从我的|"
    r"iphoneから送信|ipadから送信|my\s+iphoneから送信)",
    re.I | re.U,
)
_URLISH = re.compile(r"<[^>]*>|\([^)]*https?://[^)]*\)|https?://\S+")
_VALEDICTION = re.compile(
    r"^\s*(?:(?:best|kind|warm|warmest|kindest|many|with|best\s+and\s+kind|with\s+kind|yours)?\s*regards|"
    r"cheers|best\s+wishes|bien\s+[àa]\s+vous|(?:\w+\s+)?cordialement|bonne\s+(?:journ[ée]e|soir[ée]e)|"
    r"mit\s+freundlichen\s+gr[üu](?:ß|ss)en|freundliche\s+gr[üu](?:ß|ss)e|viele\s+gr[üu](?:ß|ss)e|"
    r"liebe\s+gr[üu](?:ß|ss)e|beste\s+gr[üu](?:ß|ss)e|mfg|lg|met\s+vriendelijke\s+groet(?:en)?|"
    r"vriendelijke\s+groet(?:en)?|(?:un\s+)?saludos?(?:\s+cordiales)?|atentamente|cordiali\s+saluti|"
    r"distinti\s+saluti|atenciosamente|cumprimentos|pozdrawiam|z\s+poważaniem|с\s+уважением|"
    r"med\s+vänlig\s+hälsning|vänliga\s+hälsningar|med\s+venlig\s+hilsen|venlig\s+hilsen|"
    r"med\s+vennlig\s+hilsen|vennlig\s+hilsen|mvh|ystävällisin\s+terveisin|terveisin|üdvözlettel|"
    r"s\s+pozdravem|saygılarımla|此致|敬上|祝好)\s*[,.!！]*\s*$",
    re.I | re.U,
)


@dataclass(frozen=True)
class _Marker:
    start: int
    kind: str  # "attribution" | "headers" | "original" | "forward" | "quote" | "sig"


def _norm(line: str) -> str:
    return _INVISIBLE.sub("", line)


def _is_quoted(line: str) -> bool:
    stripped = line.lstrip()
    # ">:" alone ends a wrapped attribution ("... <addr\n>:"), it is not a quote.
    return stripped.startswith(">") and stripped.rstrip() not in (">:", ">：")


def _attribution_at(lines: list[str], quoted: list[bool], end: int) -> int | None:
    """Start index of an attribution ending at line `end`, or None."""
    last = lines[end].rstrip()
    if not last or len(last) > 600:
        return None
    if not (last.endswith((":", "：", "-")) or _ENDS_WITH_VERB.search(last) or _CJK_ATTRIBUTION.search(last)):
        return None
    first = max(0, end - 3)
    for start in range(end, first - 1, -1):
        if start < end and (not lines[start].strip() or quoted[start]):
            first = start + 1
            break
    windows = [(s, " ".join(_LEADING_DECOR.sub("", lines[i]).strip() if i == s else lines[i].strip() for i in range(s, end + 1)))
               for s in range(first, end + 1)]
    # An attribution that starts with its lead word ("On", "Le", "Am"...) may span several lines:
    # the longest window that matches wins, so "On <date>, <name>\n<addr>\nwrote:" is cut whole.
    for s, text in windows:
        if len(text) <= 600 and _LEAD.match(text) and _ENDS_WITH_VERB.search(text):
            return s
    # A window that starts with a date ("02.04.2012 14:20 <name> <addr>\n...> wrote:"): longest.
    for s, text in windows:
        if len(text) <= 600 and _DATE_START.match(text) and (
            _ENDS_WITH_VERB.search(text) or _CJK_ATTRIBUTION.search(text) or _date_addr_colon(text)
        ):
            return s
    # Otherwise the shortest window that matches, so a sentence above is never swallowed.
    for s, text in reversed(windows):
        if len(text) > 600 or not _HAS_DATE_OR_ADDR.search(text):
            continue
        if _ENDS_WITH_VERB.search(text) or _CJK_ATTRIBUTION.search(text) or _date_addr_colon(text):
            return s
    return None


def _header_block_at(lines: list[str], quoted: list[bool], start: int) -> bool:
    """An Outlook-style block of quoted-message headers starts at `start`."""
    match = _HEADER_LINE.match(lines[start])
    if match is None:
        return False
    has_from = match.group("from") is not None
    count, gaps, i = 1, 0, start + 1
    while i < len(lines) and i <= start + 8 and count < 3:
        line = lines[i]
        if quoted[i]:
            break
        m = _HEADER_LINE.match(line)
        if m is not None:
            count += 1
            has_from = has_from or m.group("from") is not None
        elif line.strip() and gaps < 2 and len(line) < 200:
            gaps += 1  # a wrapped value ("<long-address@example.com>")
        else:
            break
        i += 1
    return count >= 2 and has_from


_SENT_GENERIC = re.compile(r"^\s*sent\s+(?:from|with|via|using)\s+(?!my\b)(\S)", re.I)


def _mobile_at(lines: list[str], i: int) -> bool:
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
                quoted = [_is_quoted(x) for x in lines[j : j + 5]]
                return quoted[0] or any(_attribution_at(lines[j : j + 5], quoted, e) == 0 for e in range(len(quoted)))
    return True


def _first_marker(lines: list[str], quoted: list[bool], signatures: bool) -> _Marker | None:
    """The earliest marker. An attribution ending at line i can start up to three lines above it,
    so the scan goes on three lines past the first marker found."""
    best: _Marker | None = None
    for i, line in enumerate(lines):
        if best is not None and i > best.start + 3:
            break
        found: _Marker | None = None
        if quoted[i]:
            found = _Marker(i, "quote")
        elif not line.strip():
            continue
        elif _ORIGINAL_SEP.match(line):
            found = _Marker(i, "original")
        elif _FORWARD_SEP.match(line):
            found = _Marker(i, "forward")
        elif _header_block_at(lines, quoted, i):
            found = _Marker(i, "headers")
        else:
            start = _attribution_at(lines, quoted, i)
            if start is not None:
                found = _Marker(start, "attribution")
            elif signatures and _is_signature_line(lines, i):
                found = _Marker(i, "sig")
        if found is not None and (best is None or found.start < best.start):
            best = found
    return best


def _is_signature_line(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SIG_DELIM.match(line):
        return True
    if _LONG_UNDERSCORES.match(line) and _short_tail(lines, i + 1, 15):
        return True
    return _mobile_at(lines, i)


def _short_tail(lines: list[str], start: int, max_lines: int) -> bool:
    return sum(1 for line in lines[start:] if line.strip()) <= max_lines


def _back_over_rules(lines: list[str], cut: int) -> int:
    """Move a cut up over blank lines and separator rules ("-----", "_____", "====") above it."""
    while cut > 0 and (not lines[cut - 1].strip() or _RULE.match(lines[cut - 1])):
        cut -= 1
    return cut


def _answers(lines: list[str], quoted: list[bool], first_quote: int) -> tuple[list[tuple[int, int]], int]:
    """Answers written under or between the quoted lines that start at `first_quote`: their
    (start, end) line ranges, and how many separate quote blocks there are."""
    answers: list[tuple[int, int]] = []
    blocks = 0
    i, n = first_quote, len(lines)
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
        length, stop = _answer_length(lines[i:j])
        if length > 0:
            answers.append((i, i + length))
            in_block = False
        if stop:
            break  # a new header, a signature: nothing below is an answer
        i = j
    return answers, blocks


def _answer_length(segment: list[str]) -> tuple[int, bool]:
    """How many lines of an unquoted run under a quote are an answer (0: only blank lines), and
    whether the run ends in a new quoted message or a signature (nothing below is an answer)."""
    quoted = [False] * len(segment)
    last = 0
    for k, line in enumerate(segment):
        if not line.strip():
            continue
        if (
            _ORIGINAL_SEP.match(line)
            or _FORWARD_SEP.match(line)
            or _header_block_at(segment, quoted, k)
            or _attribution_at(segment, quoted, k) is not None
            or _is_signature_line(segment, k)
        ):
            return last, True
        last = k + 1
    return last, False


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n")


def _cut(text: str, *, signatures: bool, forwarded: bool) -> str:
    original = _lines(text)
    # Markers are matched without invisible characters (Outlook puts LRMs in its dates); the text
    # kept is the original, where they may matter (ZWJ emoji, ZWNJ in Persian).
    lines = [_norm(line) for line in original]
    quoted = [_is_quoted(line) for line in lines]
    first = _first_marker(lines, quoted, signatures)
    if first is None:
        return _strip_signature_lines(original) if signatures else _join(original)
    if first.kind == "forward" or forwarded:
        # Forwarded content is what the customer sends us: keep it.
        return _join(original)
    if first.kind in ("attribution", "quote"):
        # Is the quote answered below it? Only ">"-quoting shows it; after an attribution the
        # quote must start right away (blank lines aside).
        k = first.start
        if first.kind == "attribution":
            k += 1
            while k < len(lines) and not quoted[k] and (
                not lines[k].strip() or lines[k].strip() in (">:", ">：") or _is_attr_tail(lines, quoted, first.start, k)
            ):
                k += 1
        if k < len(lines) and quoted[k]:
            answers, blocks = _answers(lines, quoted, k)
            if answers:
                if blocks == 1 and answers[0][0] > k:
                    # Bottom-posted: one quote, the answer under it. The answer is the new part.
                    kept = original[: _back_over_rules(lines, first.start)]
                    for a, b in answers:
                        kept += [""] + original[a:b] if kept else original[a:b]
                else:
                    # Interleaved: the quotes say what each answer answers; keep them.
                    kept = original[: answers[-1][1]]
                return _strip_signature_lines(kept) if signatures else _join(kept)
    cut = _back_over_rules(lines, first.start)
    kept = original[:cut]
    if signatures:
        return _strip_signature_lines(kept)
    return _join(kept)


def _is_attr_tail(lines: list[str], quoted: list[bool], start: int, k: int) -> bool:
    """Line k still belongs to the (wrapped) attribution that starts at `start`."""
    return k <= start + 3 and _attribution_at(lines, quoted, k) == start


def _strip_signature_lines(original: list[str]) -> str:
    lines = [_norm(line) for line in original]
    quoted = [_is_quoted(line) for line in lines]
    end = len(lines)
    for i in range(end):
        if not quoted[i] and _is_signature_line(lines, i):
            end = _back_over_rules(lines, i)
            break
    # A closing "Regards," and a few short lines (name, title, phone) under it.
    for i in range(end - 1, max(-1, end - 9), -1):
        if _VALEDICTION.match(lines[i]):
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

"""The things a customer names in a message: order references, catalogue products, quantities.

Rules, not a model: an order number is only taken where the customer says it is one (a configured
pattern such as `SO-\\d+`, or a number right after "order" / "order number" / "订单号"), so phone
numbers, dates, prices, postcodes and "order 3 more" never become order references. A wrong
reference would make the hub ask the back end about somebody else's order.

Everything works on the NFKC form of the text (full-width "４７１１" and "＃" become ASCII), so the
spans and mention texts are of that form.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rapidfuzz import fuzz, process

# Long messages are cut here: an order question is asked near the top, and the cost stays bounded.
MAX_CHARS = 5000

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_LATIN_RE = re.compile(r"[A-Za-z]")


class CatalogueEntry(Protocol):
    """A product the detector can recognise (adapters.base.Product fits)."""

    sku: str
    name: str
    variant: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ProductMention:
    text: str                    # as the customer wrote it
    sku: str | None = None       # when it matched the catalogue (None: several variants fit)
    variant: str | None = None
    quantity: int | None = None


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    value: str


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text[:MAX_CHARS])


def language(text: str) -> str:
    """"zh" when the text is mostly Chinese (a few Latin words such as "order 4711" or "X200" in a
    Chinese sentence stay "zh"), else "en"."""
    cjk = len(_CJK_RE.findall(text))
    if cjk == 0:
        return "en"
    latin = len(_LATIN_RE.findall(text))
    return "zh" if cjk >= 2 or cjk * 3 >= latin else "en"


# --- order references --------------------------------------------------------------------------

_REF = r"#?\s?(?:[A-Za-z]{1,4}-?)?\d(?:[\d-]*\d)?[A-Za-z]?"
# "order" as a noun with an explicit number marker ("order number", "order no.", "order #")
_EN_MARKED = re.compile(
    r"(?<![A-Za-z])(?:order|purchase|oder|ordr)s?\s*(?:number|num|no|nr|id|ref(?:erence)?)s?\b\.?\s*(?:is|was|:|#|-)?\s*"
    rf"(?P<ref>{_REF})", re.IGNORECASE)
_EN_BARE = re.compile(
    r"(?P<pre>\b[\w']+\s+)?(?<![A-Za-z])(?:order|purchase|oder|ordr)s?\s*(?P<sep>:|#|-|\bis\b|\bwas\b)?\s*"
    rf"(?P<ref>{_REF})", re.IGNORECASE)
# 订单号 / 订单编号 / 单号 (not 快递单号, 物流单号, 运单号: those are tracking numbers)
_ZH = re.compile(
    r"(?:(?:订单|訂單)(?:号码|號碼|编号|編號|号|號)?|(?<![快递遞物流运運])(?:单号|單號))\s*(?:是|为|為|:|#)?\s*"
    rf"(?P<ref>{_REF})")
# after a first reference: ", 4712 and 4713", "和4712"
_MORE = re.compile(rf"\s*(?:,|/|&|\band\b|\bor\b|和|、|及|跟)\s*(?P<ref>{_REF})", re.IGNORECASE)

_DETERMINERS = {"my", "our", "the", "this", "that", "your", "his", "her", "their", "an", "for", "on",
                "about", "with", "of", "re", "regarding", "from", "in", "to"}
_VERB_CONTEXT = {"to", "i", "we", "please", "pls", "can", "could", "would", "will", "i'd", "we'd", "should",
                 "and", "then", "just", "also", "you"}
# what follows a number that is a quantity, a duration, a price or a measure, never an order number
_NOT_AFTER_REF = re.compile(
    r"\s*(?:more|of\b|x\b|pcs|pc\b|pieces?|units?|items?|boxes|packs?|pairs?|sets?|times|"
    r"days?|weeks?|months?|hours?|minutes?|mins?|years?|"
    r"%|€|\$|£|¥|eur\b|euros?|usd|dollars?|gbp|pounds?|kg|g\b|m\b|cm|mm|gb|tb|"
    r"个|件|台|只|双|套|箱|包|盒|瓶|张|本|部|支|条|份|把|盏|袋|罐|块|元|天|周|星期|月|年|小时|分钟|号(?!码)|日)",
    re.IGNORECASE)
_DATE_LIKE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}-\d{1,2}(?:-\d{2,4})?$")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _clean_ref(raw: str) -> str:
    return re.sub(r"\s+", "", raw).lstrip("#").upper()


class OrderReferences:
    """Finds order references: the configured patterns anywhere, plus numbers the customer calls an
    order number. Values are normalised (upper case, no leading "#")."""

    def __init__(self, patterns: Sequence[str]):
        # ASCII: so that \b and \w in a pattern treat Chinese characters as non-word ("订单SO-4711"
        # has a word boundary before "SO"); the text is NFKC already, so \d loses nothing
        self.patterns = [re.compile(p, re.IGNORECASE | re.ASCII) for p in patterns]

    def find(self, text: str, *, exclude: Sequence[tuple[int, int]] = ()) -> list[Span]:
        spans: list[Span] = []
        taken = list(exclude)

        def add(start: int, end: int, raw: str) -> bool:
            if any(s < end and start < e for s, e in taken):
                return False
            value = _clean_ref(raw)
            if not value or _DATE_LIKE.match(value):
                return False
            spans.append(Span(start, end, value))
            taken.append((start, end))
            return True

        for pattern in self.patterns:
            for m in pattern.finditer(text):
                add(m.start(), m.end(), m.group(m.lastgroup) if m.lastgroup else m.group(0))
        for m in _EN_MARKED.finditer(text):
            if self._plausible(text, m, marked=True):
                add(m.start("ref"), m.end("ref"), m.group("ref")) and self._more(text, m.end(), add)
        for m in _EN_BARE.finditer(text):
            if self._plausible(text, m, marked=bool(m.group("sep"))):
                add(m.start("ref"), m.end("ref"), m.group("ref")) and self._more(text, m.end(), add)
        for m in _ZH.finditer(text):
            if self._plausible(text, m, marked=True, cjk=True):
                add(m.start("ref"), m.end("ref"), m.group("ref")) and self._more(text, m.end(), add)
        spans.sort(key=lambda s: s.start)
        return spans

    def _more(self, text: str, pos: int, add) -> None:
        while (m := _MORE.match(text, pos)) and self._plausible_value(text, m):
            if not add(m.start("ref"), m.end("ref"), m.group("ref")):
                return
            pos = m.end()

    @staticmethod
    def _plausible_value(text: str, m: re.Match) -> bool:
        ref = _clean_ref(m.group("ref"))
        digits = sum(ch.isdigit() for ch in ref)
        if digits < 2 or _NOT_AFTER_REF.match(text, m.end("ref")):
            return False
        after = text[m.end("ref"):m.end("ref") + 2]
        # "49.99", "4,711", "12:30": a price, a thousands figure, a time
        return not re.match(r"[.,:/]\d", after)

    def _plausible(self, text: str, m: re.Match, *, marked: bool, cjk: bool = False) -> bool:
        if not self._plausible_value(text, m):
            return False
        ref = _clean_ref(m.group("ref"))
        digits = sum(ch.isdigit() for ch in ref)
        if marked:
            return True
        # bare "order 4711": "order" must be the noun, not the verb of "I want to order 3000"
        pre = (m.group("pre") or "").strip().lower()
        if pre in _VERB_CONTEXT:
            return False
        if _CN_MOBILE.match(ref):
            return False
        return digits >= 3 or pre in _DETERMINERS


# --- quantities --------------------------------------------------------------------------------

_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
               "fifty": 50, "hundred": 100, "a couple of": 2, "a couple": 2, "a pair of": 2, "a dozen": 12,
               "dozen": 12, "both": 2}
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_EN_NUM = r"\d{1,5}|" + "|".join(sorted((re.escape(k) for k in _EN_NUMBERS), key=len, reverse=True))
_UNITS_EN = (r"x\b|×|pcs\b|pc\b|pieces?\b|units?\b|items?\b|more\b|of\s+(?:them|these|those|the|it|each|your)\b|"
             r"boxes\b|box\b|packs?\b|pairs?\b|sets?\b|bottles?\b|cans?\b|bags?\b|cartons?\b|rolls?\b|copies\b")
_QTY_EN = re.compile(rf"(?<![\w.,#$€£/-])(?P<n>{_EN_NUM})\s*(?:{_UNITS_EN})", re.IGNORECASE)
_QTY_EN_PREFIX = re.compile(r"(?:(?<![A-Za-z])(?:x|×)\s*|\b(?:qty|quantity|amount)\s*:?\s*)(?P<n>\d{1,5})\b", re.IGNORECASE)
_QTY_EN_VERB = re.compile(
    rf"\b(?:need|want|buy|get|order|take|reserve|have|purchase)\s+(?:to\s+order\s+|another\s+)?(?P<n>{_EN_NUM})\b"
    r"(?!\s*(?:days?|weeks?|months?|years?|hours?|minutes?|%|€|\$|£|euros?|dollars?|kg|cm|mm|gb|tb)\b)(?![.,:/-]\d)",
    re.IGNORECASE)
_QTY_EN_PLURAL = re.compile(
    rf"(?<![\w.,#$€£/-])(?P<n>{_EN_NUM})\s+(?:[a-z]+\s+){{0,2}}(?P<noun>[a-z]{{3,}}s)\b", re.IGNORECASE)
_NOT_COUNTED = {"days", "weeks", "months", "years", "hours", "minutes", "seconds", "times", "euros", "dollars",
                "pounds", "cents", "kgs", "grams", "meters", "metres", "inches", "yards", "miles", "kms",
                "degrees", "points", "stars", "percents", "calls", "emails", "mails", "weekends", "nights",
                "mins", "secs", "hrs", "yrs", "ages", "orders", "attempts", "tries", "messages"}
_ZH_UNITS = "个個件台臺只隻双雙套箱包盒瓶张張本部支条條份把盏盞袋罐组組副对對打"
_QTY_ZH = re.compile(rf"(?P<n>\d{{1,5}}|[零一二两兩三四五六七八九十百千]+)\s*(?P<unit>[{_ZH_UNITS}])(?!小时|月|星期|礼拜|工作日|人|问题|事)")


def _zh_number(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    total, current = 0, 0
    for ch in s:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        elif ch in "十百千":
            factor = {"十": 10, "百": 100, "千": 1000}[ch]
            total += (current or 1) * factor
            current = 0
        else:
            return None
    return total + current


def _en_number(s: str) -> int:
    s = re.sub(r"\s+", " ", s.lower())
    return int(s) if s.isdigit() else _EN_NUMBERS[s]


def find_quantities(text: str, *, exclude: Sequence[tuple[int, int]] = ()) -> list[Span]:
    """Quantities the customer states ("3 of them", "x2", "two boxes", "两个", "要5台")."""
    found: dict[int, Span] = {}
    taken = list(exclude)

    def add(m: re.Match, value: int | None) -> None:
        start, end = m.start("n"), m.end("n")
        if value is None or value <= 0 or value > 100000 or start in found:
            return
        if any(s < end and start < e for s, e in taken):
            return
        found[start] = Span(start, end, str(value))

    for m in _QTY_EN.finditer(text):
        add(m, _en_number(m.group("n")))
    for m in _QTY_EN_PREFIX.finditer(text):
        add(m, int(m.group("n")))
    for m in _QTY_EN_VERB.finditer(text):
        add(m, _en_number(m.group("n")))
    for m in _QTY_EN_PLURAL.finditer(text):
        if m.group("noun").lower() not in _NOT_COUNTED:
            add(m, _en_number(m.group("n")))
    for m in _QTY_ZH.finditer(text):
        n = m.group("n")
        # "一个" is mostly the article "a"; "这一件"… only a stated amount counts
        if n in ("一", "1") and m.group("unit") in "个個":
            continue
        add(m, _zh_number(n))
    return sorted(found.values(), key=lambda s: s.start)


# --- catalogue products ------------------------------------------------------------------------

# A colour said in either language matches a variant named in the other.
_COLOURS = {
    "blue": "蓝藍", "black": "黑", "white": "白", "red": "红紅", "green": "绿綠", "grey": "灰", "gray": "灰",
    "silver": "银銀", "gold": "金", "pink": "粉", "yellow": "黄黃", "purple": "紫", "orange": "橙橘",
    "brown": "棕褐咖", "navy": "藏青", "beige": "米", "rose": "玫",
}
_WORD = re.compile(r"[A-Za-z0-9]+")
_SKU_LIKE = re.compile(r"[A-Za-z0-9]+(?:[-_./][A-Za-z0-9]+)*")
# short words that are never the letter part of a model name written apart ("in 42", "no 5")
_NOT_MODEL_PREFIX = {"a", "i", "in", "on", "at", "to", "of", "by", "is", "it", "my", "me", "we", "or", "an",
                     "as", "be", "do", "go", "he", "if", "no", "so", "up", "us", "am", "pm", "nr", "id"}


@dataclass
class _Name:
    tokens: tuple[str, ...]
    entries: list[int]          # catalogue entries with this name (variants)


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """Latin-script tokens, lower case, with "x-200" and "xr 200" joined to "x200", "xr200"."""
    raw = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]
    out: list[tuple[str, int, int]] = []
    i = 0
    while i < len(raw):
        tok, s, e = raw[i]
        if i + 1 < len(raw) and tok.isalpha() and raw[i + 1][0].isdigit() and len(raw[i + 1][0]) >= 2:
            gap = text[e:raw[i + 1][1]]
            if (gap == "-" and len(tok) <= 4) or (gap == " " and len(tok) <= 2 and tok not in _NOT_MODEL_PREFIX):
                tok, e = tok + raw[i + 1][0], raw[i + 1][2]
                i += 1
        out.append((tok, s, e))
        i += 1
    return out


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _token_matches(message_token: str, name_token: str) -> bool:
    """Exact, a plural ("x200s"), or for plain words a close spelling ("kettel")."""
    if message_token == name_token or message_token == name_token + "s" or message_token == name_token + "es":
        return True
    if any(ch.isdigit() for ch in name_token):
        # model numbers and sizes: the digits must agree; "128g" is "128gb"
        return (re.sub(r"\D", "", message_token) == re.sub(r"\D", "", name_token)
                and (name_token.startswith(message_token) or message_token.startswith(name_token))
                and len(message_token) >= 3)
    return len(name_token) >= 4 and fuzz.ratio(message_token, name_token) >= 80


class Catalogue:
    """The products a detector recognises: SKUs exactly, names and aliases fuzzily (token by token,
    rare tokens weighing more), Chinese names by substring; then the variant the customer stated."""

    def __init__(self, entries: Iterable[CatalogueEntry]):
        self.entries = list(entries)
        self.by_sku: dict[str, int] = {}
        names: dict[tuple[str, ...], _Name] = {}
        self.cjk_names: dict[str, list[tuple[str, _Name]]] = defaultdict(list)   # first 2 chars -> names
        for i, entry in enumerate(self.entries):
            if entry.sku:
                self.by_sku.setdefault(_key(entry.sku), i)
            for label in (entry.name, *(entry.aliases or ())):
                if not label:
                    continue
                toks = tuple(t for t, _, _ in _tokens(label))
                cjk = "".join(_CJK_RE.findall(label))
                if toks:
                    names.setdefault(toks, _Name(toks, []))
                    if i not in names[toks].entries:
                        names[toks].entries.append(i)
                if len(cjk) >= 2 and not toks:
                    key = unicodedata.normalize("NFKC", label).strip()
                    group = next((n for k, n in self.cjk_names[key[:2]] if k == key), None)
                    if group is None:
                        group = _Name((key,), [])
                        self.cjk_names[key[:2]].append((key, group))
                    if i not in group.entries:
                        group.entries.append(i)
        self.names = list(names.values())
        df: dict[str, int] = defaultdict(int)
        self.by_token: dict[str, list[_Name]] = defaultdict(list)
        for name in self.names:
            for tok in set(name.tokens):
                df[tok] += 1
                self.by_token[tok].append(name)
        n = max(len(self.names), 1)
        self.weight = {tok: math.log(1 + n / d) for tok, d in df.items()}
        self.vocabulary = [t for t in self.by_token if not any(ch.isdigit() for ch in t) and len(t) >= 4]
        self.by_digits: dict[str, list[str]] = defaultdict(list)     # "200" -> ["x200", "x200s"]
        for tok in self.by_token:
            digits = re.sub(r"\D", "", tok)
            if len(digits) >= 2 and digits != tok:
                self.by_digits[digits].append(tok)
        self._spelling_cache: dict[str, set[str]] = {}
        self.variant_tokens = [self._variant_tokens(e.variant) for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def _variant_tokens(variant: str | None) -> tuple[str, ...]:
        if not variant:
            return ()
        toks = [t for t, _, _ in _tokens(variant)]
        toks += [run for run in re.findall(f"[{_CJK}]+", variant)]
        return tuple(toks)

    def find(self, text: str, *, exclude: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int, ProductMention]]:
        """Products named in `text`, as (start, end, mention) in text order."""
        if not self.entries:
            return []
        tokens = [t for t in _tokens(text) if not any(s < t[2] and t[1] < e for s, e in exclude)]
        hits: list[tuple[int, int, list[int], bool]] = []     # start, end, candidate entries, by SKU
        for m in _SKU_LIKE.finditer(text):
            i = self.by_sku.get(_key(m.group(0)))
            if i is not None and not any(s < m.end() and m.start() < e for s, e in exclude):
                hits.append((m.start(), m.end(), [i], True))
        hits += self._name_hits(text, tokens)
        hits += self._cjk_hits(text)
        hits = _without_overlaps(hits)
        mentions = []
        for k, (s, e, candidates, by_sku) in enumerate(hits):
            region = (hits[k - 1][1] if k else 0, hits[k + 1][0] if k + 1 < len(hits) else len(text))
            if by_sku:
                entry = self.entries[candidates[0]]
                mentions.append((s, e, ProductMention(text[s:e], entry.sku, entry.variant)))
                continue
            mentions.append(self._resolve_variant(text, s, e, candidates, region))
        return mentions

    def _name_hits(self, text: str, tokens: list[tuple[str, int, int]]):
        # candidate names: every name sharing a token (exact or close spelling) with the message
        matched: dict[int, list[tuple[int, str]]] = defaultdict(list)    # id(name) -> (position, name token)
        by_id: dict[int, _Name] = {}
        for pos, (tok, _, _) in enumerate(tokens):
            name_tokens = {tok} if tok in self.by_token else set()
            for suffix in ("s", "es"):
                if tok.endswith(suffix) and tok[: -len(suffix)] in self.by_token:
                    name_tokens.add(tok[: -len(suffix)])
            if not name_tokens and len(tok) >= 4 and not any(ch.isdigit() for ch in tok):
                name_tokens = self._close_spellings(tok)
            if not name_tokens and any(ch.isdigit() for ch in tok):
                name_tokens = {t for t in self.by_digits.get(re.sub(r"\D", "", tok), ()) if _token_matches(tok, t)}
            for nt in name_tokens:
                for name in self.by_token[nt]:
                    by_id[id(name)] = name
                    matched[id(name)].append((pos, nt))
        hits = []
        for key, found in matched.items():
            name = by_id[key]
            covered = {nt for _, nt in found}
            total = sum(self.weight[t] for t in set(name.tokens))
            score = sum(self.weight[t] for t in covered) / total
            model_number = any(any(ch.isdigit() for ch in t) and len(t) >= 3 for t in covered)
            if not (score >= 0.6 or model_number):
                continue
            positions = sorted(p for p, _ in found)
            # the name's words must stand together, not be scattered over the message
            start, end = self._densest(positions, len(name.tokens))
            hits.append((tokens[start][1], tokens[end][2], list(name.entries), False, score))
        # the best-covered name first, so "X200 Pro" wins over "X200" on the same words
        hits.sort(key=lambda h: (-h[4], h[0]))
        return [h[:4] for h in hits]

    def _close_spellings(self, tok: str) -> set[str]:
        # the same everyday words come back in every message: remember the answer
        found = self._spelling_cache.get(tok)
        if found is None:
            found = {c for c, _, _ in process.extract(tok, self.vocabulary, scorer=fuzz.ratio, score_cutoff=80, limit=3)}
            if len(self._spelling_cache) < 50_000:
                self._spelling_cache[tok] = found
        return found

    @staticmethod
    def _densest(positions: list[int], width: int) -> tuple[int, int]:
        best = (positions[0], positions[0])
        for i, p in enumerate(positions):
            j = i
            while j + 1 < len(positions) and positions[j + 1] - p <= width + 1:
                j += 1
            if positions[j] - p > best[1] - best[0]:
                best = (p, positions[j])
        return best

    def _cjk_hits(self, text: str):
        hits = []
        if not self.cjk_names or not _CJK_RE.search(text):
            return hits
        for i in range(len(text) - 1):
            for key, name in self.cjk_names.get(text[i:i + 2], ()):
                if text.startswith(key, i):
                    hits.append((i, i + len(key), list(name.entries), False))
        return hits

    def _resolve_variant(self, text: str, s: int, e: int, candidates: list[int], region: tuple[int, int]):
        """Pick the variant the customer stated near the product ("the X200 in blue", "蓝色的X200")."""
        if len(candidates) == 1 and not self.entries[candidates[0]].variant:
            entry = self.entries[candidates[0]]
            return s, e, ProductMention(text[s:e], entry.sku, None)
        around = text[region[0]:region[1]]
        offset = region[0]
        words = _tokens(around)
        scored = []
        for i in candidates:
            vt = self.variant_tokens[i]
            hit_spans = [span for t in vt if (span := _find_variant_token(t, around, words))]
            scored.append((len(hit_spans) / len(vt) if vt else 0.0, len(hit_spans), i, hit_spans))
        best = max(scored, key=lambda x: (x[0], x[1]))
        if best[1] == 0:
            if len(candidates) == 1:
                entry = self.entries[candidates[0]]
                return s, e, ProductMention(text[s:e], entry.sku, entry.variant)
            return s, e, ProductMention(text[s:e], None, _stated_colour(around))
        top = [x for x in scored if (x[0], x[1]) == (best[0], best[1])]
        spans = [(a + offset, b + offset) for a, b in best[3]]
        # widen the mention to the variant words right next to it ("X200 in blue")
        for a, b in spans:
            if 0 <= a - e <= 12:
                e = b
            elif 0 <= s - b <= 12:
                s = a
        # the one variant that fits best, even partly ("X200 in white" when white is only 256GB)
        if len(top) == 1:
            entry = self.entries[best[2]]
            return s, e, ProductMention(text[s:e], entry.sku, entry.variant)
        words_said = " ".join(text[a:b] for a, b in spans)
        return s, e, ProductMention(text[s:e], None, words_said or None)


def _find_variant_token(token: str, text: str, words: list[tuple[str, int, int]]) -> tuple[int, int] | None:
    if _CJK_RE.match(token):
        at = text.find(token)
        if at >= 0:
            return at, at + len(token)
        if len(token) >= 2 and token.endswith("色") and (at := text.find(token[:-1])) >= 0:
            return at, at + len(token) - 1
        for en, zh in _COLOURS.items():
            if token[0] in zh:
                for w, a, b in words:
                    if w == en:
                        return a, b
        return None
    for w, a, b in words:
        if _token_matches(w, token) or (len(token) >= 4 and len(w) >= 3 and token.startswith(w) and len(token) - len(w) <= 1):
            return a, b
    chars = _COLOURS.get(token)
    if chars:
        for ch in chars:
            at = text.find(ch)
            if at >= 0:
                return at, at + (2 if text[at + 1:at + 2] == "色" else 1)
    return None


def _stated_colour(text: str) -> str | None:
    lower = text.lower()
    for en, zh in _COLOURS.items():
        if re.search(rf"\b{en}\b", lower):
            return en
        for ch in zh:
            if ch + "色" in text:
                return ch + "色"
    return None


def _without_overlaps(hits):
    """Keep the first of overlapping hits (SKUs come first, then the best-covered names)."""
    kept = []
    for h in hits:
        if not any(k[0] < h[1] and h[0] < k[1] for k in kept):
            kept.append(h)
    return sorted(kept, key=lambda h: h[0])

"""Text into lexical terms, the same way for articles and queries.

- Unicode NFKC (full-width letters and digits become ASCII), case-folded.
- Latin-script words are stemmed (Snowball English via PyStemmer) after dropping a short list of
  English stop words (Lucene's), so "refunds"/"refunded" meet "refund".
- Codes keep their shape: "SKU-4711-B" gives the whole code "sku-4711-b" (rare, so it scores high
  when a customer quotes it) plus its parts "sku", "4711", "b" (so "4711" alone still matches).
- Chinese (a run of Han characters) is cut into words with jieba (search mode, which adds the
  shorter words inside long ones); Japanese (a run that holds kana) into overlapping character
  pairs, as jieba has no Japanese dictionary. The decision is made per run, so a query and an
  article containing the same run always produce the same terms.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache

STOP_WORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"]
)

# Han, kana (hiragana, katakana, half-width katakana after NFKC is full-width), CJK symbols excluded.
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
# A word, or a code: alphanumerics joined by - _ . / (a trailing full stop is not part of it).
_WORD = re.compile(r"[^\W_]+(?:[-_./][^\W_]+)*")
_JOINERS = re.compile(r"[-_./]")

_jieba = None
_jieba_lock = threading.Lock()


def _jieba_module():
    """jieba builds its dictionary (about a second) on first use: do it once, in any thread."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _cjk_terms(run: str) -> list[str]:
    if _KANA.search(run):
        if len(run) == 1:
            return [run]
        return [run[i : i + 2] for i in range(len(run) - 1)]
    return [w for w in _jieba_module().cut_for_search(run) if w.strip()]


def _latin_terms(chunk: str) -> list[str]:
    terms: list[str] = []
    for match in _WORD.finditer(chunk):
        word = match.group(0)
        if _JOINERS.search(word):
            # A code or a compound: keep the whole and its parts.
            parts = [p for p in _JOINERS.split(word) if p]
            if any(ch.isdigit() for ch in word) or len(parts) > 1:
                terms.append(word)
            terms.extend(_stem(p) if p.isalpha() else p for p in parts if p not in STOP_WORDS)
        elif word in STOP_WORDS:
            continue
        elif word.isalpha():
            terms.append(_stem(word))
        else:
            terms.append(word)
    return terms


def tokenize(text: str) -> list[str]:
    """Lexical terms of `text`, in order, repeats kept (term frequency matters to BM25)."""
    text = normalise(text)
    terms: list[str] = []
    position = 0
    for run in _CJK_RUN.finditer(text):
        if run.start() > position:
            terms.extend(_latin_terms(text[position : run.start()]))
        terms.extend(_cjk_terms(run.group(0)))
        position = run.end()
    if position < len(text):
        terms.extend(_latin_terms(text[position:]))
    return terms


def is_code(term: str) -> bool:
    """A term shaped like a part number, order or error code ("flt-7781-x", "a1001"): letters and
    digits together. A bare number (an amount, a year) is not one."""
    return any(ch.isdigit() for ch in term) and any(ch.isalpha() for ch in term)


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None

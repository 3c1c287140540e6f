"""What a customer's message asks for: an intent with a confidence, and the order references,
products and quantities it names. English and Chinese.

STUB (interface fixed; the detector is being built): only the shapes and a naive rule are here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, Sequence

INTENTS = ("order_status", "stock", "return_refund", "complaint", "other")
DEFAULT_ORDER_PATTERNS = (r"\bSO-\d+\b", r"#\d{4,}\b")


class CatalogueEntry(Protocol):
    """A product the detector can recognise (adapters.base.Product fits)."""

    sku: str
    name: str
    variant: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ProductMention:
    text: str                    # as the customer wrote it
    sku: str | None = None       # when it matched the catalogue
    variant: str | None = None
    quantity: int | None = None


@dataclass(frozen=True)
class Intent:
    name: str                    # one of INTENTS
    confidence: float            # calibrated probability in [0, 1]
    orders: tuple[str, ...] = ()            # order references, normalised ("SO-4711", "4711")
    products: tuple[ProductMention, ...] = ()
    quantities: tuple[int, ...] = ()
    language: str = "en"         # "en" | "zh"


class IntentDetector:
    """Built once (patterns compiled, catalogue indexed, classifier loaded); detect() is cheap."""

    def __init__(self, *, order_patterns: Sequence[str] = DEFAULT_ORDER_PATTERNS, catalogue: Sequence[CatalogueEntry] = ()):
        self.order_patterns = [re.compile(p, re.IGNORECASE) for p in order_patterns]
        self.catalogue = list(catalogue)

    def detect(self, text: str) -> Intent:
        orders = tuple(m.group(0).lstrip("#") for p in self.order_patterns for m in p.finditer(text))
        if orders or re.search(r"\border\b", text, re.IGNORECASE):
            return Intent("order_status", 0.5, orders=orders)
        return Intent("other", 0.5)


_default: IntentDetector | None = None


def detect(text: str) -> Intent:
    """detect() with the default patterns and no catalogue."""
    global _default
    if _default is None:
        _default = IntentDetector()
    return _default.detect(text)

"""What a customer's message asks for: an intent with a calibrated confidence, and the order
references, products and quantities it names. English and Chinese.

    detector = IntentDetector(order_patterns=[r"SO-\\d+"], catalogue=await backend.products())
    intent = detector.detect("where is my order SO-4711?")
    if intent.name == "order_status" and intent.confidence >= AUTO_ANSWER_CONFIDENCE: ...

The intent comes from a linear classifier (knowledge/intent_model.py), the entities from rules
(knowledge/entities.py). detect() takes well under 2 ms on one core; the classifier is shared by
every detector of the process and built (or read from its cache) on first use: call warm_up()
at start, off the event loop, so the first message pays nothing.

A wrong automatic answer is worse than none: answer automatically only at or above
AUTO_ANSWER_CONFIDENCE, where order_status and stock were at least 95% precise on the
development split; below it, route the message to an agent with the intent as a hint.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.entities import (
    Catalogue,
    CatalogueEntry,
    OrderReferences,
    ProductMention,
    Span,
    find_quantities,
    language,
    normalise,
)
from knowledge.intent_model import IntentModel, ModelError, build_or_load

__all__ = ["INTENTS", "DEFAULT_ORDER_PATTERNS", "AUTO_ANSWER_CONFIDENCE", "CatalogueEntry", "ProductMention",
           "Intent", "IntentDetector", "ModelError", "detect"]

INTENTS = ("order_status", "stock", "return_refund", "complaint", "other")
DEFAULT_ORDER_PATTERNS = (r"\bSO-\d+\b", r"#\d{4,}\b")
# See the module docstring and bench/intents.py --tune, which measures it on the development split.
AUTO_ANSWER_CONFIDENCE = 0.85

_REF_TOKEN = " _ref_ "
# a stated quantity belongs to a product this close to it ("3 X200", "X200 x 2", "蓝色X200要两台")
_QUANTITY_REACH = 16


@dataclass(frozen=True)
class Intent:
    name: str                    # one of INTENTS
    confidence: float            # calibrated probability in [0, 1]
    orders: tuple[str, ...] = ()            # order references, normalised ("SO-4711", "4711")
    products: tuple[ProductMention, ...] = ()
    quantities: tuple[int, ...] = ()
    language: str = "en"         # "en" | "zh"
    scores: dict[str, float] = field(default_factory=dict, compare=False)   # probability of every intent


_model: IntentModel | None = None
_model_lock = threading.Lock()


def _mask(text: str, refs: OrderReferences) -> str:
    """The text the classifier sees: order references become one token, whatever their shape."""
    text = normalise(text)
    out, pos = [], 0
    for span in refs.find(text):
        out += [text[pos:span.start], _REF_TOKEN]
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def load_model(cache_dir: Path | None = None) -> IntentModel:
    """A classifier loaded from the cache in cache_dir, or trained and cached there."""
    refs = OrderReferences(DEFAULT_ORDER_PATTERNS)
    return build_or_load(lambda t: _mask(t, refs), cache_dir=cache_dir)


def shared_model(cache_dir: Path | None = None) -> IntentModel:
    """The process's classifier, built or loaded once (thread-safe); cache_dir counts only for
    the first call."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                _model = load_model(cache_dir)
    return _model


class IntentDetector:
    """Built once (patterns compiled, catalogue indexed, classifier loaded); detect() is cheap."""

    def __init__(self, *, order_patterns: Sequence[str] = DEFAULT_ORDER_PATTERNS, catalogue: Sequence[CatalogueEntry] = (),
                 model: IntentModel | None = None, cache_dir: Path | None = None):
        self.order_refs = OrderReferences(order_patterns)
        self.order_patterns = self.order_refs.patterns
        self.catalogue = Catalogue(catalogue)
        self._model = model
        self._cache_dir = cache_dir

    @property
    def model(self) -> IntentModel:
        if self._model is None:
            self._model = shared_model(self._cache_dir)
        return self._model

    def warm_up(self) -> None:
        """Build or load the classifier now (seconds the first time, then from the cache)."""
        self.detect("where is my order 4711?")

    def with_catalogue(self, catalogue: Sequence[CatalogueEntry]) -> IntentDetector:
        """The same detector over a new catalogue (the back end's products changed)."""
        other = IntentDetector(catalogue=catalogue, model=self._model, cache_dir=self._cache_dir)
        other.order_refs, other.order_patterns = self.order_refs, self.order_patterns
        return other

    def detect(self, text: str) -> Intent:
        if not isinstance(text, str):
            raise TypeError(f"detect() takes the message text as str, not {type(text).__name__}")
        text = normalise(text)
        products = self.catalogue.find(text)
        product_spans = [(s, e) for s, e, _ in products]
        orders = self.order_refs.find(text, exclude=product_spans)
        quantities = find_quantities(text, exclude=product_spans + [(o.start, o.end) for o in orders])
        mentions = _attach_quantities(text, products, quantities)
        masked, pos = [], 0
        for span in orders:
            masked += [text[pos:span.start], _REF_TOKEN]
            pos = span.end
        masked.append(text[pos:])
        scores = self.model.probabilities("".join(masked))
        name = max(scores, key=scores.get)
        return Intent(
            name=name,
            confidence=scores[name],
            orders=tuple(dict.fromkeys(o.value for o in orders)),
            products=tuple(mentions),
            quantities=tuple(int(q.value) for q in quantities),
            language=language(text),
            scores=scores,
        )


def _attach_quantities(text: str, products: list[tuple[int, int, ProductMention]], quantities: list[Span]) -> list[ProductMention]:
    mentions = [m for _, _, m in products]
    for q in quantities:
        best, best_gap = None, _QUANTITY_REACH + 1
        for k, (s, e, _) in enumerate(products):
            gap = s - q.end if q.end <= s else q.start - e
            if 0 <= gap < best_gap and mentions[k].quantity is None:
                best, best_gap = k, gap
        if best is not None:
            m = mentions[best]
            mentions[best] = ProductMention(m.text, m.sku, m.variant, int(q.value))
    return mentions


_default: IntentDetector | None = None


def detect(text: str) -> Intent:
    """detect() with the default patterns and no catalogue."""
    global _default
    if _default is None:
        _default = IntentDetector()
    return _default.detect(text)

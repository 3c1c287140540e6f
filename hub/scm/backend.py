"""The hub's side of the SCM back end, built once per process: the guarded back end from settings,
and the intent detector that knows the back end's catalogue (refreshed on a schedule).

Everything that asks the back end (routing, escalation, demand) goes through one ScmServices, so
one circuit breaker and one connection pool serve them all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from adapters.base import BackendError, CustomerRef, Product, ScmBackend
from hub.contract.errors import ConfigError
from hub.runtime import heap
from knowledge.intents import Intent, IntentDetector

log = logging.getLogger(__name__)

# After a failed catalogue fetch, try again sooner than the regular refresh.
CATALOGUE_RETRY_SECONDS = 60.0


def build_detector(order_patterns: list[str] | None, catalogue: tuple[Product, ...]) -> IntentDetector:
    if order_patterns is None:
        return IntentDetector(catalogue=catalogue)
    return IntentDetector(order_patterns=order_patterns, catalogue=catalogue)


class ScmServices:
    """The back end and the detector. detect() is cheap and synchronous (call it off the event
    loop); refresh_catalogue() fetches the catalogue when due and rebuilds the detector only when
    the catalogue changed."""

    def __init__(
        self,
        backend: ScmBackend,
        *,
        order_patterns: list[str] | None = None,
        catalogue_refresh_seconds: float = 900.0,
        detector_factory: Callable[[list[str] | None, tuple[Product, ...]], IntentDetector] = build_detector,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.backend = backend
        self.order_patterns = order_patterns
        self.refresh_seconds = catalogue_refresh_seconds
        self._factory = detector_factory
        self._clock = clock
        self.catalogue: tuple[Product, ...] = ()
        self.detector = detector_factory(order_patterns, ())
        self._refresh_due = 0.0
        self._lock = asyncio.Lock()

    def detect(self, text: str) -> Intent:
        return self.detector.detect(text)

    async def warm_up(self) -> None:
        """Load the intent classifier now, off the event loop, so the first message pays nothing."""
        warm = getattr(self.detector, "warm_up", None)
        if warm is not None:
            await asyncio.to_thread(warm)
            await asyncio.to_thread(heap.settle, "intent detection loaded")

    def _with_catalogue(self, products: tuple[Product, ...]) -> IntentDetector:
        if hasattr(self.detector, "with_catalogue") and self._factory is build_detector:
            return self.detector.with_catalogue(products)
        return self._factory(self.order_patterns, products)

    async def refresh_catalogue(self, *, force: bool = False) -> bool:
        """Fetch the catalogue if due (or forced); True if the detector was rebuilt. A back end
        that is down leaves the last catalogue in use."""
        if not force and self._clock() < self._refresh_due:
            return False
        async with self._lock:
            if not force and self._clock() < self._refresh_due:
                return False
            try:
                products = tuple(await self.backend.products())
            except BackendError as exc:
                log.warning("catalogue not refreshed from the %s back end: %s", getattr(self.backend, "name", "?"), exc)
                self._refresh_due = self._clock() + min(CATALOGUE_RETRY_SECONDS, self.refresh_seconds)
                return False
            self._refresh_due = self._clock() + self.refresh_seconds
            if products == self.catalogue:
                return False
            # Indexing the catalogue takes a moment: off the event loop. The classifier is kept.
            self.detector = await asyncio.to_thread(self._with_catalogue, products)
            self.catalogue = products
            log.info("intent detector rebuilt with %d catalogue products", len(products))
            return True

    async def close(self) -> None:
        await self.backend.close()


def build_services(settings, *, backend: ScmBackend | None = None) -> ScmServices:
    """From the hub's Settings: the configured back end (adapters.registry) unless one is given."""
    if backend is None:
        from adapters.registry import BackendMisconfigured, build_backend

        try:
            backend = build_backend(settings.scm.backend, data_dir=Path(settings.data_dir))
        except BackendMisconfigured as exc:
            raise ConfigError(str(exc)) from None
    return ScmServices(
        backend,
        order_patterns=settings.scm.order_patterns,
        catalogue_refresh_seconds=settings.scm.catalogue_refresh_seconds,
    )


def customer_ref(customer_id: int, name: str | None, segment: str | None, identities) -> CustomerRef:
    """The asker as the back end sees them: only the identities the store holds as verified (the
    privacy rule, adapters.base.belongs_to, must never rest on an address anyone can type)."""
    emails = tuple(sorted({i.address for i in identities if i.verified and i.kind == "email"}))
    phones = tuple(sorted({i.address for i in identities if i.verified and i.kind == "phone"}))
    return CustomerRef(customer_id=customer_id, emails=emails, phones=phones, name=name, segment=segment)

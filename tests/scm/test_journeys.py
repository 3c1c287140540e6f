"""The customer journeys of bench/journeys.py, fewer of them, as tests on SQLite and PostgreSQL:
each journey on a fresh store through the real email parser, ingest, routing and the demo SCM
back end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# bench/ is scripts, not a package: the journeys module is loaded from its file.
_spec = importlib.util.spec_from_file_location("bench_journeys", Path(__file__).resolve().parents[2] / "bench" / "journeys.py")
journeys = sys.modules.setdefault("bench_journeys", importlib.util.module_from_spec(_spec))
if not hasattr(journeys, "World"):
    _spec.loader.exec_module(journeys)

REFS = ["A1001", "SO-4711", "A1003", "SO-4702"]


async def _orders(services):
    return await journeys.orders_of(services, REFS)


@pytest.mark.parametrize("i", range(4))
def test_a_follow_up_on_another_channel_lands_in_the_same_conversation(engine, services, i):
    assert journeys.same_matter(journeys.World(engine, services), i)


@pytest.mark.parametrize("i", range(4))
def test_unrelated_matters_are_not_glued(engine, services, i):
    assert not journeys.unrelated(journeys.World(engine, services), i, REFS)


@pytest.mark.parametrize("i", range(5))
async def test_the_owner_is_answered_on_every_channel_and_nobody_else(engine, services, i):
    order = [o for o in await _orders(services) if o.state in journeys.wording.ANSWERABLE_STATES][i % 2]
    told, leaked = await journeys.owner_asks(journeys.World(engine, services), i, order)
    assert told and not leaked


@pytest.mark.parametrize("i", range(6))
async def test_strangers_never_get_someone_elses_order(engine, services, i):
    orders = await _orders(services)
    assert not await journeys.stranger_asks(journeys.World(engine, services), i, orders[i % len(orders)])


async def test_a_partly_answered_message_stays_open_with_the_rest_marked(engine, services):
    answered, left_open = await journeys.multi_question(journeys.World(engine, services), 0, "KET-BLUE")
    assert answered and left_open

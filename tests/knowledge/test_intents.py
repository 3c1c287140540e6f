"""Intent detection: entities (orders, products, quantities) in English and Chinese, the classifier
built from the committed data, and `servicehub intents eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from adapters.base import Product
from knowledge import intent_model, intents_eval
from knowledge.intents import INTENTS, Intent, IntentDetector, ProductMention

CATALOGUE = [
    Product("X200-BLU", "X200 Phone", "Blue", ("X200",)),
    Product("X200-BLK", "X200 Phone", "Black", ("X200",)),
    Product("X200-WHT-256", "X200 Phone", "White 256GB", ("X200",)),
    Product("AUR-1", "Aurora Desk Lamp", None, ("极光台灯",)),
    Product("NIM-RED", "Nimbus Kettle", "Red", ("水壶",)),
    Product("NIM-GRN", "Nimbus Kettle", "Green", ("水壶",)),
    Product("ZEN3", "Zen 3 Headphones", None, ()),
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("intents-model")


@pytest.fixture(scope="session")
def model(model_dir):
    from knowledge.intents import load_model

    # Not shared_model(): another test module may have built the process's model elsewhere.
    return load_model(model_dir)


@pytest.fixture(scope="session")
def detector(model):
    return IntentDetector(catalogue=CATALOGUE, model=model)


@pytest.fixture(scope="session")
def orders_only(model):
    return IntentDetector(order_patterns=[r"\bSO-\d+\b", r"#\d{4,}\b", r"\bINV\d{6}\b"], model=model)


# --- order references ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, orders", [
    ("where is my order 4711?", ("4711",)),
    ("Where is my order 42?", ("42",)),
    ("my order number is A1001, has it shipped?", ("A1001",)),
    ("order no. 20817 still not here", ("20817",)),
    ("Order SO-4711 hasn't arrived", ("SO-4711",)),
    ("so-4711 where is it", ("SO-4711",)),
    ("any news on #88412?", ("88412",)),
    ("orders 4711, 4712 and 4713 are late", ("4711", "4712", "4713")),
    ("my order is 55120", ("55120",)),
    ("订单号 4711 什么时候发货", ("4711",)),
    ("订单号：70019，请问什么时候发货", ("70019",)),
    ("我的订单SO-10293到哪了", ("SO-10293",)),
    ("我的order 4711到哪了", ("4711",)),
    ("ＳＯ－４７１１到哪了", ("SO-4711",)),      # full-width, as typed with a Chinese keyboard
    ("订单 4711 和 4712 都没到", ("4711", "4712")),
])
def test_order_references_the_customer_names(orders_only, text, orders):
    assert orders_only.detect(text).orders == orders


@pytest.mark.parametrize("text", [
    "please call me on +44 20 7946 0958 about my order",
    "my phone number is 0171 5551234",
    "我的手机是13812345678，订单还没到",
    "I ordered on 2024-05-01 and it's not here",
    "I want to order 3 more",
    "I want to order 3000 units",
    "please order 12 chairs for the office",
    "my order from 3 days ago",
    "I paid 49.99 for my order",
    "my postcode is 10115, when will my order arrive",
    "快递单号是 SF1234567890",          # a tracking number, not an order number
    "订单3天了还没到",
    "where is my order",
])
def test_numbers_that_are_not_order_references(orders_only, text):
    assert orders_only.detect(text).orders == ()


def test_configured_patterns_are_taken_anywhere(orders_only):
    assert orders_only.detect("invoice INV123456 is wrong").orders == ("INV123456",)
    assert IntentDetector(order_patterns=[r"\bSO-\d+\b"], model=orders_only.model).detect("#88412 please").orders == ()


# --- quantities -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, quantities", [
    ("I need 3 of them", (3,)),
    ("can I get two boxes", (2,)),
    ("I want to order 3 more", (3,)),
    ("qty: 12", (12,)),
    ("6 bar stools please", (6,)),
    ("我要两个", (2,)),
    ("黑色的要4台", (4,)),
    ("三把椅子", (3,)),
    ("where is my order 4711", ()),
    ("it has been 3 days", ()),
    ("I paid 49.99 euros", ()),
    ("我想问一个问题", ()),
])
def test_quantities(orders_only, text, quantities):
    assert orders_only.detect(text).quantities == quantities


# --- catalogue products ---------------------------------------------------------------------------

def _products(detector, text):
    return detector.detect(text).products


def test_the_variant_the_customer_states_picks_the_sku(detector):
    assert _products(detector, "do you have the X200 in blue?") == (ProductMention("X200 in blue", "X200-BLU", "Blue"),)
    assert _products(detector, "is the black x-200 in stock")[0].sku == "X200-BLK"
    assert _products(detector, "any X200 in blu left?")[0].sku == "X200-BLU"      # a typo
    assert _products(detector, "X200 white 256gb available?")[0].sku == "X200-WHT-256"
    assert _products(detector, "X200有蓝色的吗？")[0].sku == "X200-BLU"           # colour said in Chinese
    assert _products(detector, "水壶有红色的吗")[0].sku == "NIM-RED"               # Chinese alias


def test_a_name_without_variant_leaves_the_sku_open_when_several_fit(detector):
    (mention,) = _products(detector, "is the X200 available?")
    assert mention.sku is None and mention.text == "X200"
    (mention,) = _products(detector, "do you have the X200 in pink?")
    assert mention.sku is None and mention.variant == "pink"
    (mention,) = _products(detector, "X200 in white?")            # white comes in 256GB only
    assert mention.sku == "X200-WHT-256"


def test_skus_exactly_and_names_fuzzily(detector):
    assert _products(detector, "is X200-BLK available")[0].sku == "X200-BLK"
    assert _products(detector, "is x200blk available")[0].sku == "X200-BLK"
    assert _products(detector, "do you still have the aurora desk lmap")[0].sku == "AUR-1"
    assert _products(detector, "极光台灯还有吗")[0].sku == "AUR-1"
    assert _products(detector, "do you sell the Zen 3 headphones")[0].sku == "ZEN3"
    assert _products(detector, "do you sell desks") == ()
    assert _products(detector, "I need a lamp") == ()         # one generic word is not a product


def test_quantities_attach_to_the_product_they_stand_by(detector):
    intent = detector.detect("I need 3 X200 in black and 2 Nimbus kettles in green")
    assert [(p.sku, p.quantity) for p in intent.products] == [("X200-BLK", 3), ("NIM-GRN", 2)]
    assert intent.quantities == (3, 2)
    assert [(p.sku, p.quantity) for p in detector.detect("蓝色X200要两台").products] == [("X200-BLU", 2)]


def test_a_product_name_is_not_an_order_reference(detector):
    intent = detector.detect("my order X200 in blue hasn't arrived")
    assert intent.orders == () and intent.products[0].sku == "X200-BLU"


# --- language and intents -------------------------------------------------------------------------

@pytest.mark.parametrize("text, language", [
    ("where is my order?", "en"), ("我的订单到哪了", "zh"), ("我的order 4711到哪了", "zh"), ("X200 有货么", "zh"),
    ("Thanks! 谢谢", "zh"), ("", "en"),
])
def test_language(detector, text, language):
    assert detector.detect(text).language == language


@pytest.mark.parametrize("text, name", [
    ("where is my order 4711?", "order_status"),
    ("has my parcel been shipped yet?", "order_status"),
    ("我的快递到哪了？", "order_status"),
    ("do you have the X200 in blue?", "stock"),
    ("X200还有货吗", "stock"),
    ("I want to return the kettle and get a refund", "return_refund"),
    ("我要退货退款", "return_refund"),
    ("your service is terrible, I want to complain", "complaint"),
    ("服务太差了，我要投诉", "complaint"),
    ("how do I place an order", "other"),
    ("what's my bank balance", "other"),
    ("is the shop open on sunday", "other"),
    ("cancel my subscription", "other"),
])
def test_clear_intents(detector, text, name):
    intent = detector.detect(text)
    assert intent.name == name, intent.scores


def test_an_intent_is_a_probability_over_all_intents(detector):
    intent = detector.detect("where is my order SO-4711?")
    assert isinstance(intent, Intent)
    assert set(intent.scores) == set(INTENTS)
    assert sum(intent.scores.values()) == pytest.approx(1.0)
    assert intent.confidence == max(intent.scores.values()) and 0 <= intent.confidence <= 1
    assert hash(intent)     # frozen and hashable although it carries the scores
    assert detector.detect("").name == "other"
    with pytest.raises(TypeError):
        detector.detect(None)


def test_module_level_detect_uses_the_default_patterns(model, monkeypatch):
    from knowledge import intents

    monkeypatch.setattr(intents, "_model", model)
    monkeypatch.setattr(intents, "_default", None)
    assert intents.detect("where is SO-4711?").orders == ("SO-4711",)


# --- the model and its cache ----------------------------------------------------------------------

def test_the_model_is_cached_as_plain_arrays_and_loads_identically(model, model_dir):
    (cache,) = model_dir.glob("intents-*.npz")
    with np.load(cache, allow_pickle=False) as data:       # no pickled objects inside
        assert set(data.files) == {"classes", "terms", "idf", "coef", "intercept", "temperature"}
    loaded = intent_model.IntentModel.load(cache)
    text = "do you have the X200 in blue?"
    assert loaded.probabilities(text) == pytest.approx(model.probabilities(text))


def test_a_broken_cache_is_rebuilt(tmp_path):
    from knowledge.entities import OrderReferences
    from knowledge.intents import DEFAULT_ORDER_PATTERNS, _mask

    refs = OrderReferences(DEFAULT_ORDER_PATTERNS)
    data = tmp_path / "intents-train-tiny.jsonl"
    rows = [{"text": t, "intent": i} for t, i in [("where is my order", "order_status"), ("where is my parcel", "order_status"),
                                                   ("do you have it in blue", "stock"), ("is it in stock", "stock"),
                                                   ("hello there", "other"), ("thanks a lot", "other")]]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = intent_model.Params(min_df=1)
    first = intent_model.build_or_load(lambda t: _mask(t, refs), cache_dir=tmp_path, params=params, paths=[data])
    (cache,) = tmp_path.glob("intents-*.npz")
    cache.write_bytes(b"not a numpy file")
    again = intent_model.build_or_load(lambda t: _mask(t, refs), cache_dir=tmp_path, params=params, paths=[data])
    assert again.probabilities("where is my order") == pytest.approx(first.probabilities("where is my order"), rel=1e-3)
    data.write_text('{"text": "no intent"}\n')
    with pytest.raises(intent_model.ModelError, match="line 1"):
        intent_model.build_or_load(lambda t: t, cache_dir=tmp_path, params=params, paths=[data])


def test_the_eval_module_names_the_same_intents():
    assert intents_eval.INTENTS == INTENTS


# --- servicehub intents eval -----------------------------------------------------------------------

def _cli(args, model_dir, tmp_path):
    env = dict(os.environ, SERVICEHUB_INTENTS_CACHE_DIR=str(model_dir), SERVICEHUB_DATA_DIR=str(tmp_path / "data"),
               HF_HUB_OFFLINE="1")
    env.pop("SERVICEHUB_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "hub.cli", "intents", "eval", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_eval_prints_accuracy_and_per_intent_figures_as_json(model, model_dir, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"text": "where is my order 4711?", "intent": "order_status"},
        {"text": "我的快递到哪了", "intent": "order_status"},
        {"text": "do you have the X200 in blue?", "intent": "stock"},
        {"text": "how do I place an order", "intent": "other"},
    ]) + "\n")
    result = _cli(["--queries", str(queries), "--json"], model_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"accuracy", "per_intent"} and 0 <= report["accuracy"] <= 1
    assert set(report["per_intent"]) == set(INTENTS)
    for row in report["per_intent"].values():
        assert set(row) == {"precision", "recall", "support"}
    assert report["per_intent"]["order_status"]["support"] == 2
    assert report["per_intent"]["complaint"] == {"precision": None, "recall": None, "support": 0}

    table = _cli(["--queries", str(queries), "--threshold", "0.5"], model_dir, tmp_path)
    assert table.returncode == 0 and "order_status" in table.stdout and "accuracy" in table.stdout


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("", "no queries"),
    ("{not json}\n", "line 1: not JSON"),
    ('{"text": "hi", "intent": "greeting"}\n', 'line 1: "intent" must be one of'),
    ('{"intent": "other"}\n', 'line 1: expected an object with a string "text"'),
    ('["where is my order", "order_status"]\n', "line 1: expected an object"),
])
def test_eval_rejects_bad_input_in_one_line(model_dir, tmp_path, content, message):
    queries = tmp_path / "queries.jsonl"
    if content is not None:
        queries.write_text(content)
    result = _cli(["--queries", str(queries), "--json"], model_dir, tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1 and not result.stdout


def test_eval_rejects_a_threshold_outside_zero_to_one(model_dir, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"text": "hi", "intent": "other"}\n')
    result = _cli(["--queries", str(queries), "--threshold", "2"], model_dir, tmp_path)
    assert result.returncode == 2 and "--threshold" in result.stderr

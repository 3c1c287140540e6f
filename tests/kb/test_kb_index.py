"""The hybrid knowledge-base index (knowledge/index.py) with the real packaged model."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge.embedder import Embedder, default_embedder
from knowledge.feedback import NOT_HELPFUL, USED, FeedbackMemory, Judgement
from knowledge.index import (
    VIEWS,
    HybridIndex,
    IndexConfig,
    IndexUnreadable,
    Passage,
    encode_passages,
)
from knowledge.passages import split_article

ARTICLES = {
    "returns": ("Returns and refunds", "You can send back any item within 30 days of delivery. We refund the original payment method within five business days after the parcel reaches our warehouse."),
    "shipping": ("Delivery times", "Orders leave our warehouse within two working days. Delivery inside the EU takes three to five days; tracking links arrive by email."),
    "password": ("Resetting your password", "Click 'Forgot password' on the sign-in page and follow the link we email you. The link expires after one hour."),
    "zh-returns": ("退货政策", "您可以在收到商品后三十天内申请退货。退款将在五个工作日内退回原支付方式。"),
    "ja-shipping": ("配送について", "ご注文の商品は二営業日以内に発送いたします。配送状況はメールでお知らせします。"),
}
# Five articles that differ only in the product and its part number.
for _n, (_model, _code) in enumerate(zip(("3000", "2000", "Mini", "Max", "Pro"), ("FLT-7781-X", "FLT-5523-K", "FLT-9034-B", "FLT-1290-Q", "FLT-6612-M"))):
    ARTICLES[f"filter-{_n}"] = (f"Replacement filter for the AquaPure {_model}", f"The replacement filter has the part number {_code}. Change it every six months for clean water.")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The process's one model (the evaluation tests share it)."""
    model = default_embedder(threads=1)  # see Embedder: one thread is faster on a busy machine
    model.warm_up()
    return model


def passages_of(article_id: str, title: str, body: str) -> list[Passage]:
    return [Passage(f"{article_id}:{i}", article_id, title, p.heading, p.text) for i, p in enumerate(split_article(title, body))]


@pytest.fixture(scope="session")
def encoded(embedder):
    """The articles' passages and their vectors, encoded once for the session."""
    passages = [p for aid, (title, body) in ARTICLES.items() for p in passages_of(aid, title, body)]
    return passages, encode_passages(embedder, passages)


@pytest.fixture
def index(embedder, encoded) -> HybridIndex:
    idx = HybridIndex(embedder)
    idx.upsert(*encoded)
    return idx


def top(result) -> str | None:
    return result.hits[0].article_id if result.hits else None


def test_splitting_keeps_headings():
    body = "# Returns\n\n" + "We take returns within 30 days. " * 30 + "\n\n## Damaged items\n\n" + "Send us a photo of the damage. " * 30 + "\n\n```\n# not a heading\n```"
    passages = split_article("Returns", body, max_chars=400)
    assert len(passages) > 2
    assert {p.heading for p in passages} == {"", "Damaged items"}  # the H1 repeats the title
    assert all(len(p.text) <= 400 for p in passages)
    damaged = [p for p in passages if p.heading == "Damaged items"]
    assert any("# not a heading" in p.text for p in damaged)
    assert split_article("Returns", body, max_chars=400) == passages  # deterministic
    assert split_article("Short", "One line.") == [split_article("Short", "One line.")[0]]
    assert split_article("Short", "One line.")[0].heading == ""


def test_hybrid_finds_by_meaning_and_by_exact_code(index):
    meaning = index.search("how do I get my money back for something I sent back?")
    assert top(meaning) == "returns" and meaning.answerable
    assert 0.0 <= meaning.confidence <= 1.0 and meaning.confidence == meaning.hits[0].confidence
    assert len({h.article_id for h in meaning.hits}) == len(meaning.hits)  # one hit per article

    # The filter articles differ only in product and part number: for this code the dense model
    # picks another filter, the lexical ranker matches the exact code, and the hybrid follows it.
    code = "FLT-7781-X"
    assert top(index.search(code, method="dense")) != "filter-0"
    assert top(index.search(code, method="lexical")) == "filter-0"
    hybrid = index.search(f"do you have {code} in stock?")
    assert top(hybrid) == "filter-0"
    assert code in hybrid.hits[0].snippet


def test_cjk_text_is_found_lexically(index):
    chinese = index.search("退款", method="lexical")
    assert top(chinese) == "zh-returns"
    japanese = index.search("配送状況", method="lexical")
    assert top(japanese) == "ja-shipping"
    assert top(index.search("退货 退款")) == "zh-returns"
    # The English-only model's cosines are noise for Chinese: the hybrid answers by the words alone.
    hybrid, lexical = index.search("退货要多久退款"), index.search("退货要多久退款", method="lexical")
    assert [(h.passage_id, h.confidence) for h in hybrid.hits] == [(h.passage_id, h.confidence) for h in lexical.hits]
    index.config.dense_reads_cjk = True  # a multilingual model: the fused ranking again
    assert [h.confidence for h in index.search("退货要多久退款").hits] != [h.confidence for h in lexical.hits]


def test_every_passage_has_its_three_vectors(embedder, encoded):
    passages, vectors = encoded
    assert vectors.shape == (len(passages), VIEWS, embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=2), 1.0, atol=2e-3)
    title = embedder.encode([passages[0].title])[0]
    assert float(vectors[0, 2] @ title) > 0.999  # the title view is the title's vector (float16)
    untitled = encode_passages(embedder, [Passage("x", "x", "", "", "Only text here.")])
    assert not untitled[0, 2].any()  # no title: no title vector


def test_agents_feedback_moves_articles_for_similar_questions(index, embedder):
    """A question like one where an agent used an article ranks that article higher; "not
    helpful" pushes it down; an unrelated question is untouched."""
    question = "how many days does it take?"  # after sending an item back, or for a delivery?
    similar = embedder.encode(["How many days does that take?"])[0]
    assert float(similar @ embedder.encode([question])[0]) > 0.9
    before = index.search(question, k=10).hits
    assert [h.article_id for h in before[:2]] == ["shipping", "returns"]
    other = "how do I reset my password?"
    untouched = [(h.article_id, h.confidence) for h in index.search(other, k=10).hits]

    memory = FeedbackMemory(embedder.dimension, similarity=0.55)
    index.memory = memory
    memory.add([Judgement(("conv-1", "returns"), similar, "returns", USED)])  # the customer meant a return
    after = index.search(question, k=10).hits
    assert after[0].article_id == "returns" and after[0].confidence > before[1].confidence
    memory.add([Judgement(("conv-1", "returns"), similar, "returns", NOT_HELPFUL)])  # the agent changed their mind
    rejected = {h.article_id: h for h in index.search(question, k=10).hits}
    assert rejected["returns"].score < before[1].score and rejected["returns"].confidence < before[1].confidence
    assert [(h.article_id, h.confidence) for h in index.search(other, k=10).hits] == untouched
    # lexical search has no question vector: no feedback
    with_memory = [(h.article_id, h.confidence) for h in index.search(question, method="lexical").hits]
    index.memory = None
    assert [(h.article_id, h.confidence) for h in index.search(question, method="lexical").hits] == with_memory


def test_an_article_agents_used_joins_the_candidates(embedder, encoded):
    index = HybridIndex(embedder, IndexConfig(candidates=1))  # one candidate per ranker
    index.upsert(*encoded)
    question = "how many days does it take?"
    assert [h.article_id for h in index.search(question, k=1).hits] == ["shipping"]
    assert "returns" not in {p.article_id for p in index.candidates(question, k=1).passages}
    index.memory = FeedbackMemory(embedder.dimension, similarity=0.55)
    index.memory.add([Judgement("conv-1", embedder.encode([question])[0], "returns", USED)])
    assert index.search(question, k=1).hits[0].article_id == "returns"


def test_no_good_answer_for_an_unrelated_query(index):
    for method in ("hybrid", "lexical", "dense"):
        result = index.search("who won the football world cup in 1998?", method=method)
        assert not result.answerable, method
    assert index.search("", k=3).hits == []


def test_upsert_replaces_and_remove_removes(index):
    before = len(index)
    index.upsert([Passage("password:0", "password", "Resetting your password", "", "Passwords are reset by our support team over the phone: call 0800 123 456.")])
    assert len(index) == before
    hit = index.search("phone number to reset my password").hits[0]
    assert hit.article_id == "password" and "0800" in hit.snippet
    index.remove(["password:0", "no-such-passage"])
    assert "password:0" not in index.ids() and len(index) == before - 1
    assert all(h.article_id != "password" for h in index.search("reset my password", k=10).hits)
    index.remove_article("filter-0")
    assert not any(pid.startswith("filter-0:") for pid in index.ids())
    with pytest.raises(KeyError):
        index.vectors(["password:0"])


def test_changes_beside_a_large_segment_and_their_merge(embedder, encoded):
    """Past `always_merge_below`, changes wait beside the segment (delta, dead rows) until a merge."""
    config = IndexConfig(always_merge_below=0, merge_min=100, inline_merge_limit=10)
    idx = HybridIndex(embedder, config)
    idx.upsert(*encoded)
    idx.compact()
    idx.upsert([Passage("shipping:0", "shipping", "Delivery times", "", "We now deliver by drone within two hours in Berlin.")])
    idx.upsert(passages_of("gift", "Gift cards", "Gift cards can be bought in any amount from 10 to 500 euros and never expire."))
    idx.remove(["password:0"])
    snapshot = idx._state
    assert snapshot.delta and snapshot.dead  # nothing merged yet
    assert top(idx.search("can a drone bring my parcel?")) == "shipping"
    assert top(idx.search("do gift cards expire?")) == "gift"
    assert "password:0" not in idx.ids()
    ids = idx.ids()
    idx.compact()
    assert not idx._state.delta and not idx._state.dead
    assert idx.ids() == ids
    assert top(idx.search("can a drone bring my parcel?")) == "shipping"


def test_save_load_round_trip_and_unreadable_index(index, embedder, tmp_path):
    index.upsert([Passage("late:0", "late", "Late parcels", "", "A parcel later than ten days is refunded in full.")])  # in the delta
    target = tmp_path / "kb"
    index.save(target)
    loaded = HybridIndex.load(target, embedder)
    assert loaded.ids() == index.ids() and len(loaded) == len(index)
    ids = sorted(index.ids())
    assert (loaded.vectors(ids) == index.vectors(ids)).all()
    for query in ("FLT-7781-X", "when does my order arrive", "退款", "parcel ten days late"):
        assert [h.passage_id for h in loaded.search(query).hits] == [h.passage_id for h in index.search(query).hits]
    index.save(target)  # saving again replaces the state, keeps one segment
    assert len([p for p in target.iterdir() if p.name.startswith("segment-")]) == 1

    with pytest.raises(IndexUnreadable):
        HybridIndex.load(tmp_path / "missing", embedder)
    damaged = next(target.glob("segment-*/passages.jsonl"))
    damaged.write_bytes(damaged.read_bytes().replace(b"warehouse", b"wareHOUSE"))
    with pytest.raises(IndexUnreadable):
        HybridIndex.load(target, embedder)
    index.save(tmp_path / "other")
    state = json.loads((tmp_path / "other" / "state.json").read_text())
    (tmp_path / "other" / "state.json").write_text(json.dumps({**state, "dimension": 768}))
    with pytest.raises(IndexUnreadable, match="768"):
        HybridIndex.load(tmp_path / "other", embedder)
    (tmp_path / "other" / "state.json").write_text("{not json")
    with pytest.raises(IndexUnreadable):
        HybridIndex.load(tmp_path / "other", embedder)


def test_approximate_index_above_the_exact_limit(embedder, encoded):
    passages, vectors = encoded
    idx = HybridIndex(embedder, IndexConfig(exact_limit=4))
    idx.upsert(passages[:3], vectors[:3])
    assert not idx.approximate
    idx.upsert(passages[3:], vectors[3:])
    assert idx.approximate
    assert top(idx.search("how long does delivery take?")) == "shipping"
    assert top(idx.search("FLT-6612-M")) == "filter-4"


def test_searches_run_while_another_thread_writes(index):
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                result = index.search("refund for a returned item")
                assert result.hits
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for round_ in range(15):
            index.upsert([Passage(f"note:{round_}", f"note-{round_ % 3}", "Store notes", "", f"Shop note number {round_} about opening hours.")])
            index.remove([f"note:{round_ - 2}"])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors
    assert {pid for pid in index.ids() if pid.startswith("note:")} == {"note:13", "note:14"}

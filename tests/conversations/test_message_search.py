"""Full-text search over message text (the inbox's q=), on SQLite (FTS5 words, filled by the
background indexer) and PostgreSQL (a GIN index on to_tsvector): every word in one message, whole
words, accents and case folded, CJK by characters; found before the indexer has
run, after it, and no more after an edit or an erasure."""

from __future__ import annotations

import asyncio
import importlib

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, event, text

from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.conversations.listing import ConversationFilter, list_conversations
from hub.conversations.search import message_words, page
from hub.conversations.search.message_index import index_all_messages, index_messages
from hub.conversations.search.message_words import parse_query
from hub.ingest.pipeline import ingest
from hub.privacy.requests import erase_customer
from hub.store.blobs import BlobStore
from hub.store.db import make_engine, write_tx
from hub.store.models import Message
from hub.web.app import create_app

msg_t = Message.__table__


def mail(ext, address, body, subject="Question"):
    return InboundMessage("email", ext, Sender(address, address.split("@")[0].title()), body, subject=subject)


def tg(ext, body, user="4242", **kw):
    return InboundMessage("telegram", ext, Sender(user, "Ben"), body, thread=ThreadHints(thread_key=user), **kw)


def found(engine, q, **kw) -> set[int]:
    return {c["id"] for c in list_conversations(engine, ConversationFilter(q=q, **kw))["items"]}


@pytest.fixture(params=["indexed", "not yet indexed"])
def indexing(request):
    """Each search test once after the indexer caught up, and once before it ran (the LIKE tail)."""
    return request.param


@pytest.fixture
def store(engine, indexing):
    ids = {
        "kettle": ingest(engine, mail("<1@x>", "ana@shop.example", "My kettle leaks, I would like a refund.")),
        "parcel": ingest(engine, mail("<2@x>", "bob@shop.example", "The parcel never arrived. Refund please?")),
        "cafe": ingest(engine, mail("<3@x>", "cleo@shop.example", "Le café était froid et la machine cassée.")),
        "chinese": ingest(engine, tg("t1", "你好，我要退货，订单号 4711", user="555")),
        "japanese": ingest(engine, tg("t2", "注文した商品がまだ届きません", user="556")),
    }
    if indexing == "indexed":
        index_all_messages(engine)
    return {k: r.conversation_id for k, r in ids.items()}


def test_parse_query():
    assert parse_query("refund  kettle") == message_words.MessageQuery(("refund", "kettle"), ("refund", "kettle"))
    assert parse_query("退货") == message_words.MessageQuery(("退  货",), ("退货",))
    assert parse_query("order #4711 ok").phrases == ("order", "#4711", "ok")
    assert parse_query('say "hi"').fts5() == '"say" """hi"""'
    assert parse_query(" -- ? ") is None


def test_words_of_one_message_find_its_conversation(engine, store):
    assert found(engine, "refund") == {store["kettle"], store["parcel"]}
    assert found(engine, "kettle refund") == {store["kettle"]}  # every word, in any order
    assert found(engine, "kettle parcel") == set()  # not in one message
    assert found(engine, "REFUND", channel="email") == {store["kettle"], store["parcel"]}
    assert found(engine, "zeppelin") == set()


def test_whole_words_accents_and_cjk(engine, store, indexing):
    assert found(engine, "froid machine") == {store["cafe"]}
    assert found(engine, "退货") == {store["chinese"]}
    assert found(engine, "4711") == {store["chinese"]}
    assert found(engine, "商品") == {store["japanese"]}
    assert found(engine, "CAFE froid") == {store["cafe"]}  # the index folds case and accents, and so does LIKE on SQLite's tail
    if indexing == "indexed" or engine.dialect.name == "postgresql":  # LIKE on SQLite's tail differs:
        assert found(engine, "refun") == set()  # the index matches whole words


def test_an_edit_is_found_by_its_new_words_only(engine, indexing):
    first = ingest(engine, tg("m1", "I ordered 2 kettles"))
    if indexing == "indexed":
        index_all_messages(engine)
    ingest(engine, tg("m1", "I ordered 3 toasters", kind="edit"))
    assert found(engine, "toasters") == {first.conversation_id}  # stale: read with LIKE meanwhile
    assert found(engine, "kettles") == set()
    assert index_all_messages(engine) == (0 if engine.dialect.name == "postgresql" else 1)
    assert found(engine, "toasters") == {first.conversation_id}
    assert found(engine, "kettles") == set()


def test_an_erased_customers_words_are_gone_from_the_index(engine, store, tmp_path):
    ana = ingest(engine, mail("<9@x>", "ana@shop.example", "Another word: xylophone")).customer_id
    index_all_messages(engine)
    assert found(engine, "xylophone")
    erase_customer(engine, BlobStore(tmp_path / "blobs"), ana, "admin@example.com")
    assert found(engine, "xylophone") == found(engine, "kettle") == set()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM search_message WHERE search_message MATCH 'xylophone'")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM search_message_stale")).scalar() == 0


def test_the_indexer_works_in_batches_and_a_reused_id_is_indexed(engine):
    if engine.dialect.name != "sqlite":
        assert index_messages(engine) == 0  # PostgreSQL keeps its index itself
        return
    convs = [ingest(engine, mail(f"<b{i}@x>", f"c{i}@shop.example", f"batch word{i}")).conversation_id for i in range(5)]
    assert [index_messages(engine, batch=2) for _ in range(4)] == [2, 2, 1, 0]
    assert found(engine, "word4") == {convs[4]}
    with write_tx(engine) as conn:  # the newest message goes; SQLite may give its id to the next one
        newest = conn.execute(text("SELECT max(id) FROM message")).scalar()
        conn.execute(delete(msg_t).where(msg_t.c.id == newest))
    again = ingest(engine, mail("<b9@x>", "c9@shop.example", "a brand new sentence"))
    assert again.message_id == newest
    assert index_messages(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM search_message WHERE search_message MATCH 'brand'")).scalar() == 1


def test_the_postgresql_column_holds_the_words_the_query_parses_alike(engine):
    column = importlib.import_module("hub.store.migrations.versions.0012_message_search_column")
    first = importlib.import_module("hub.store.migrations.versions.0011_message_search")
    assert column.PG_DOCUMENT == first.PG_DOCUMENT == message_words.PG_DOCUMENT
    assert column.PG_CONFIG == first.PG_CONFIG == message_words.PG_CONFIG
    assert (column.PG_COLUMN, column.PG_INDEX) == (message_words.PG_COLUMN, message_words.PG_MESSAGE_INDEX)
    if engine.dialect.name != "postgresql":
        return
    ingest(engine, mail("<p@x>", "pat@shop.example", "plan me"))
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(text(
            f"EXPLAIN SELECT id FROM message WHERE {message_words.PG_COLUMN} @@ to_tsquery('search_words', 'plan')")))
        assert conn.execute(text(f"SELECT {message_words.PG_COLUMN} = {message_words.PG_DOCUMENT} FROM message")).scalar()
    assert message_words.PG_MESSAGE_INDEX in plan


async def test_the_hub_indexes_in_the_background_and_the_api_finds_message_text(settings):
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    try:
        create_agent(engine, "agent@example.com", "agent password", role="agent")
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
            headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            conv = ingest(engine, mail("<api@x>", "dora@shop.example", "The blender makes a grinding noise")).conversation_id
            resp = await client.get("/api/v1/conversations", params={"q": "grinding noise"}, headers=headers)
            assert [c["id"] for c in (await resp.json())["items"]] == [conv]
            if engine.dialect.name == "sqlite":  # the indexer reaches the message
                for _ in range(200):
                    with engine.connect() as conn:
                        if conn.execute(text("SELECT indexed_to FROM search_message_state")).scalar() > 0:
                            break
                    await asyncio.sleep(0.05)
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT count(*) FROM search_message WHERE search_message MATCH 'grinding'")).scalar() == 1
        finally:
            await client.close()
    finally:
        engine.dispose()


def test_a_common_word_lists_the_conversations_of_its_newest_matches(engine, monkeypatch):
    convs = [ingest(engine, mail(f"<w{i}@x>", f"w{i}@shop.example", f"common word {i}")).conversation_id for i in range(7)]
    ingest(engine, mail("<w-other@x>", "other@shop.example", "nothing to see"))
    index_all_messages(engine)
    monkeypatch.setattr(message_words, "MAX_MESSAGE_HITS", 3)
    assert found(engine, "common") == set(convs[-3:])
    assert found(engine, "word 0") == {convs[0]}
    if engine.dialect.name == "postgresql":  # words asked for together, each in most messages
        for i in range(30):  # enough messages for one row to be under COMMON_WORD_SHARE
            ingest(engine, mail(f"<filler{i}@x>", "other@shop.example", f"filler {i}"))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE message"))  # the statistics the estimate reads
        with engine.connect() as conn:
            assert message_words._all_common(conn, message_words.parse_query("common word"))
            assert not message_words._all_common(conn, message_words.parse_query("common nowhere"))
        # the listing walks the conversations, checking their messages: every one is found
        assert found(engine, "common word") == set(convs)
        # the planner's estimates are asked once a minute, not per listing
        statements = []
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        with engine.connect() as conn:
            assert message_words._all_common(conn, message_words.parse_query("common word"))
        assert not [s for s in statements if "EXPLAIN" in s or "reltuples" in s]
        monkeypatch.setattr(message_words, "ESTIMATE_SECONDS", 0.0)  # now stale: asked again
        with engine.connect() as conn:
            assert message_words._all_common(conn, message_words.parse_query("common word"))
        assert [s for s in statements if "EXPLAIN" in s]
        with engine.connect() as conn:
            assert message_words.conversations_with_text(conn, "common word") == set(convs[-3:])
    else:
        assert found(engine, "common word") == set(convs[-3:])


def test_common_words_not_together_lately_are_looked_up_after_a_short_walk(engine, monkeypatch):
    if engine.dialect.name != "postgresql":
        pytest.skip("the walk for common message words is PostgreSQL's (SQLite's FTS5 hands the matches over)")
    together = [ingest(engine, mail(f"<t{i}@x>", f"t{i}@shop.example", f"alpha beta {i}")).conversation_id for i in range(3)]
    apart = [ingest(engine, mail(f"<a{i}@x>", f"a{i}@shop.example", f"alpha only {i}")).conversation_id for i in range(4)]
    with engine.begin() as conn:
        conn.execute(text("ANALYZE message"))
    with engine.connect() as conn:
        assert message_words._all_common(conn, parse_query("alpha beta"))
    monkeypatch.setattr(page, "WALK_MESSAGES_FIRST", 2)
    monkeypatch.setattr(page, "WALK_MESSAGES_CONVERSATIONS", 5)
    walks = []
    event.listen(engine, "before_cursor_execute", lambda *a: walks.append(a[2]) if "current_setting('enable_bitmapscan')" in a[2] else None)
    # the newest two hold the words apart: one short walk, then the index finds the older ones
    assert found(engine, "alpha beta") == set(together)
    assert len(walks) == 1
    # the newest holds them together: the walk goes on to WALK_MESSAGES_CONVERSATIONS, then the index
    newest = ingest(engine, mail("<t-new@x>", "new@shop.example", "alpha and beta again")).conversation_id
    walks.clear()
    assert found(engine, "alpha beta") == {*together, newest}
    assert len(walks) == 2
    # a page found within the first walk is the page
    newer = ingest(engine, mail("<t-newer@x>", "newer@shop.example", "beta, alpha")).conversation_id
    walks.clear()
    assert found(engine, "alpha beta", limit=1) == {newer}
    assert len(walks) == 1
    assert not set(apart) & found(engine, "alpha beta")

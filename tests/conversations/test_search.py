"""The inbox's text search (q=), on SQLite (FTS5 trigram tables) and PostgreSQL (pg_trgm indexes):
the same answers as the plain LIKE query, paged the same way, and indexes that follow every change
to what they index (new rows, renames, merges, erasure, migrating down and up)."""

from __future__ import annotations

import importlib
import sqlite3

import pytest
from alembic import command
from sqlalchemy import delete, text, update

import hub.store.db
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.listing import ConversationFilter, list_conversations
from hub.conversations.search import page, substrings
from hub.customers.profiles import merge_customers
from hub.ingest.pipeline import ingest
from hub.store.db import SEARCH_END, SEARCH_END_SQL, index_search_queue, make_engine, read_tx, search_fold, write_tx
from hub.store.migrate import alembic_config, upgrade
from hub.store.models import Conversation, Customer, Identity, Message
from tests.conftest import need

conv_t, cust_t, ident_t, msg_t = Conversation.__table__, Customer.__table__, Identity.__table__, Message.__table__
ADMIN = Principal("agent", 1, "admin", "admin@example.com")


def mail(ext, address, name, subject, **kw):
    return InboundMessage("email", ext, Sender(address, name), "hello", subject=subject, **kw)


@pytest.fixture(autouse=True, params=["moved", "queued"])
def search_queue(request, db_url, monkeypatch):
    """SQLite: each test with the triggers' rows moved into the FTS index at every write
    transaction, and again with them all still waiting in the queue (searches read both)."""
    if request.param == "queued" and not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL maintains its indexes itself")
    monkeypatch.setattr(hub.store.db, "SEARCH_QUEUE_ROWS", 1 if request.param == "moved" else 1_000_000)
    return request.param


@pytest.fixture
def store(engine):
    """A few customers over several channels; returns conversation ids by a short name."""
    ids = {
        "ana_order": ingest(engine, mail("<1@x>", "ana.kowalski@shop.example", "Ana Kowalski", "Where is my order 48213?")),
        "ana_refund": ingest(engine, mail("<2@x>", "ana.kowalski@shop.example", "Ana Kowalski", "Refund of 50% for a_b")),
        "bob": ingest(engine, mail("<3@x>", "bob@other.example", "Bob Quixote", 'The "fast" kettle leaks')),
        "tg": ingest(
            engine, InboundMessage("telegram", "t1", Sender("700123456", "Carla Mendes"), "hi", thread=ThreadHints(thread_key="700123456"))
        ),
        "call": ingest(engine, InboundMessage("voice", "call-1", Sender("+442079460958", None), "call about a delivery")),
    }
    return {k: r.conversation_id for k, r in ids.items()}


def found(engine, q, **kw) -> set[int]:
    return {c["id"] for c in list_conversations(engine, ConversationFilter(q=q, **kw))["items"]}


def indexed(engine, q) -> set[int] | None:
    """What the trigram index answers alone (None: it cannot answer)."""
    with read_tx(engine) as conn:
        ids, _ = substrings.candidates(conn, q)
    return None if ids is None else set(ids)


def plain(engine, q, monkeypatch) -> set[int]:
    """The answer of the plain LIKE query, the reference the indexes must agree with."""
    with monkeypatch.context() as m:
        m.setattr(substrings, "SEARCH_MIN_CHARS", 10_000)
        return found(engine, q)


def test_the_search_indexes_exist(engine):
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            available = conn.execute(text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
        need(bool(available), "the pg_trgm extension (PostgreSQL contrib) is not installed")
    assert indexed(engine, "kowalski") is not None


@pytest.mark.parametrize(
    "q, expected",
    [
        ("kowal", {"ana_order", "ana_refund"}),  # customer name, mid-word
        ("KOWALSKI", {"ana_order", "ana_refund"}),  # case does not matter
        ("shop.exam", {"ana_order", "ana_refund"}),  # an email address
        ("order 482", {"ana_order"}),  # subject, across a space
        ("50%", {"ana_refund"}),  # LIKE's wildcards are plain characters
        ("a_b", {"ana_refund"}),
        ('"fast"', {"bob"}),  # quotes too
        ("quixote", {"bob"}),
        ("mendes", {"tg"}),
        ("0012345", {"tg"}),  # a Telegram user id
        ("+44207", {"call"}),  # a phone number (E.164)
        ("ko", {"ana_order", "ana_refund"}),  # two characters: SQLite's index, by the trigrams starting with them
        ("nothing like this", set()),
    ],
)
def test_search_finds_subject_name_and_address(engine, store, monkeypatch, q, expected):
    want = {store[k] for k in expected}
    assert found(engine, q) == want
    assert plain(engine, q, monkeypatch) == want


def test_search_combines_with_filters_and_pages_with_the_cursor(engine, store):
    for i in range(7):
        ingest(engine, mail(f"<p{i}@x>", f"p{i}@pager.example", f"Pat {i}", f"Parcel {i} lost"))
    assert found(engine, "parcel", channel="telegram") == set()
    seen, cursor = [], None
    while True:
        page = list_conversations(engine, ConversationFilter(q="parcel", limit=3, cursor=cursor))
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)  # same last_message_at order as ids here: newest first


def test_a_common_text_uses_the_plain_query_with_the_same_pages(engine, store, monkeypatch):
    for i in range(9):
        ingest(engine, mail(f"<c{i}@x>", f"c{i}@common.example", f"Cam {i}", f"Common question {i}"))
    monkeypatch.setattr(substrings, "SEARCH_MAX_CANDIDATES", 4)
    with read_tx(engine) as conn:
        assert substrings.candidates(conn, "common") == (None, True)  # too many: not through the index
    first = list_conversations(engine, ConversationFilter(q="common", limit=5))
    second = list_conversations(engine, ConversationFilter(q="common", limit=5, cursor=first["next_cursor"]))
    assert len(first["items"]) == 5 and len(second["items"]) == 4 and second["next_cursor"] is None
    assert found(engine, "kowal") == {store["ana_order"], store["ana_refund"]}  # a rare one still by index


def test_a_text_common_lately_is_walked_back_a_way_then_looked_up(engine, store, monkeypatch):
    older = [ingest(engine, mail(f"<o{i}@x>", f"o{i}@old.example", f"Olga {i}", f"Lid Q7 {i}")).conversation_id for i in range(3)]
    for i in range(6):
        ingest(engine, mail(f"<n{i}@x>", f"n{i}@new.example", f"Nia {i}", f"Something else {i}"))
    recent = [ingest(engine, mail(f"<r{i}@x>", f"r{i}@new.example", f"Rui {i}", f"Lid Q7 again {i}")).conversation_id for i in range(4)]
    monkeypatch.setattr(page, "COMMON_PROBE", 5)  # 4 of the newest 5: common lately
    monkeypatch.setattr(page, "COMMON_PROBE_HITS", 2)
    monkeypatch.setattr(page, "WALK_CONVERSATIONS", 6)
    looked_up = []
    search_condition = page._search_condition
    monkeypatch.setattr(page, "_search_condition", lambda *a: looked_up.append(a[1]) or search_condition(*a))
    # "q7": two characters, which PostgreSQL's trigram index cannot count and SQLite's counts only
    # by reading every match: both look at the newest conversations first
    first = list_conversations(engine, ConversationFilter(q="q7", limit=3))
    assert [c["id"] for c in first["items"]] == recent[::-1][:3] and looked_up == []  # the walk filled the page
    # the next page: the walk back 6 conversations meets one match, then the indexes find the rest
    second = list_conversations(engine, ConversationFilter(q="q7", limit=3, cursor=first["next_cursor"]))
    assert [c["id"] for c in second["items"]] == [recent[0], *older[::-1][:2]] and looked_up == ["q7"]
    third = list_conversations(engine, ConversationFilter(q="q7", limit=3, cursor=second["next_cursor"]))
    assert [c["id"] for c in third["items"]] == [older[0]] and third["next_cursor"] is None
    assert found(engine, "q7", channel="telegram") == set()


def test_the_index_follows_renames_new_addresses_and_erasure(engine, store, monkeypatch):
    with write_tx(engine) as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == store["bob"]).values(subject="Broken toaster"))
        conn.execute(update(cust_t).where(cust_t.c.name == "Carla Mendes").values(name="Carla Ribeiro"))
    assert indexed(engine, "kettle") == set() and indexed(engine, "toaster") == {store["bob"]}
    assert indexed(engine, "mendes") == set() and indexed(engine, "ribeiro") == {store["tg"]}
    # two characters at a document's end: the old one's removed (with the end mark it was indexed with)
    assert found(engine, "es") == set() == plain(engine, "es", monkeypatch)
    assert found(engine, "ro") == {store["bob"], store["tg"]} == plain(engine, "ro", monkeypatch)  # bROken, RibeiRO
    # Another address of Carla's (a new identity), then her erasure: gone from every index.
    tg = ingest(engine, InboundMessage("telegram", "t2", Sender("700123456"), "my mail", verified_identities=(Sender("carla@mail.example"),)))
    assert indexed(engine, "carla@mail") == {store["tg"], tg.conversation_id}
    with write_tx(engine) as conn:
        theirs = conv_t.c.customer_id == tg.customer_id
        conn.execute(delete(msg_t).where(msg_t.c.conversation_id.in_(conv_t.select().with_only_columns(conv_t.c.id).where(theirs))))
        conn.execute(delete(conv_t).where(theirs))
        conn.execute(delete(ident_t).where(ident_t.c.customer_id == tg.customer_id))
        conn.execute(update(cust_t).where(cust_t.c.id == tg.customer_id).values(name=None))
    for q in ("carla", "ribeiro", "700123", "mail.example"):
        assert indexed(engine, q) == set() == plain(engine, q, monkeypatch)
    assert found(engine, "ro") == {store["bob"]} == plain(engine, "ro", monkeypatch)


def test_a_write_outside_write_tx_is_found_before_and_after_it_reaches_the_index(engine, store, search_queue):
    with engine.begin() as conn:  # not write_tx: on SQLite the triggers' rows stay queued
        conn.execute(update(conv_t).where(conv_t.c.id == store["bob"]).values(subject="Descaling the kettle 9J"))
    assert indexed(engine, "descaling") == {store["bob"]} and indexed(engine, "leaks") == set()
    assert found(engine, "9j") == {store["bob"]} and found(engine, "ks") == set()  # two characters, at the end
    ingest(engine, mail("<later@x>", "zoe@example.com", "Zoe", "Anything"))  # a write_tx: the queue may move now
    assert indexed(engine, "descaling") == {store["bob"]} and indexed(engine, "leaks") == set()
    assert found(engine, "9j") == {store["bob"]} and found(engine, "ks") == set()
    if engine.dialect.name == "sqlite":
        assert indexed(engine, "9j") == {store["bob"]}
        with engine.connect() as conn:
            queued = conn.execute(text("SELECT count(*) FROM search_pending")).scalar()
        assert (queued == 0) == (search_queue == "moved")


def test_a_merged_customers_addresses_find_the_merged_conversations(engine, store):
    ana = ingest(engine, mail("<m1@x>", "ana.kowalski@shop.example", "Ana Kowalski", "x")).customer_id
    bob = ingest(engine, mail("<m2@x>", "bob@other.example", "Bob Quixote", "y")).customer_id
    merge_customers(engine, ana, bob, ADMIN)
    both = found(engine, "bob@other")
    assert {store["bob"], store["ana_order"], store["ana_refund"]} <= both
    assert found(engine, "kowalski") == both


def test_migrating_down_drops_the_indexes_and_up_builds_them_from_the_rows(db_url, store):
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "0002")
    fresh = make_engine(db_url)  # which indexes exist is remembered per engine
    # Today's listing also reads columns of later migrations (conversation.version, 0015;
    # conversation.snoozed_until, 0020) and PostgreSQL's search_fold() (0025; SQLite's is the
    # hub's own): the store of 0002 gets them for the time of the look, so that only the indexes
    # are missing.
    later_columns = (("ALTER TABLE conversation ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
                      "ALTER TABLE conversation DROP COLUMN version"),
                     ("ALTER TABLE conversation ADD COLUMN snoozed_until TIMESTAMP",
                      "ALTER TABLE conversation DROP COLUMN snoozed_until"))
    if not db_url.startswith("sqlite"):
        later_columns += (("CREATE FUNCTION search_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower(t)'",
                           "DROP FUNCTION search_fold(text)"),)
    try:
        with fresh.begin() as conn:
            for add, _ in later_columns:
                conn.execute(text(add))
        with read_tx(fresh) as conn:
            assert not substrings.has_indexes(conn)
            assert substrings.candidates(conn, "xo") == (None, False)
        assert found(fresh, "kowal") == {store["ana_order"], store["ana_refund"]}  # the plain query
        assert found(fresh, "xo") == {store["bob"]}
        with fresh.begin() as conn:
            for _, drop in later_columns:
                conn.execute(text(drop))
    finally:
        fresh.dispose()
    upgrade(db_url)
    fresh = make_engine(db_url)
    try:
        with read_tx(fresh) as conn:
            assert substrings.candidates(conn, "quixote") == ([store["bob"]], False)
            assert sorted(substrings.candidates(conn, "order 48213")[0]) == [store["ana_order"]]
            assert substrings.candidates(conn, "xo") == ([store["bob"]], False)  # quiXOte
    finally:
        fresh.dispose()


def test_an_index_out_of_step_with_the_tables_is_rebuilt_not_fatal(engine, store, caplog):
    if engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 index is SQLite's")
    index_search_queue(engine)  # everything into the index
    with engine.begin() as conn:  # then damage it: FTS5's structure record
        conn.execute(text("UPDATE search_text_data SET block = x'00' WHERE id = 10"))
    damaged = ingest(engine, mail("<damaged@x>", "dan@example.com", "Dan", "Written while damaged"))
    index_search_queue(engine)
    assert "rebuilding" in caplog.text
    assert indexed(engine, "kettle") == {store["bob"]}
    assert indexed(engine, "kowal") == {store["ana_order"], store["ana_refund"]}
    assert indexed(engine, "while damaged") == {damaged.conversation_id}
    assert indexed(engine, "ks") == {store["bob"]} and indexed(engine, "ed") == {damaged.conversation_id}  # leaKS, damagED
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM search_pending")).scalar() == 0


# --- two characters -------------------------------------------------------------------------
#
# SQLite indexes each document with a mark after it (hub.store.db.SEARCH_END), so two characters are
# found through the index's trigrams that start with them, the document's last two included.
# PostgreSQL indexes each searched column's bigrams (search_bigrams(), migration 0014).


@pytest.fixture
def short(engine, store):
    """Conversations with two-character texts at the end of a subject, a name and an address,
    and as a whole name; returns conversation ids by a short name (the store's too)."""
    ids = {
        "subject_end": ingest(engine, mail("<s1@x>", "sam@short.example", "Sam Short", "Invoice 7JQ")),
        "name_end": ingest(engine, mail("<s2@x>", "lee@short.example", "Lee Wu", "Parcel")),
        "address_end": ingest(engine, InboundMessage("voice", "call-2", Sender("+442079460989", None), "call again")),
        "whole_name": ingest(engine, mail("<s3@x>", "li@short.example", "Xu", "Parcel")),
        "greek": ingest(engine, mail("<s4@x>", "eleni@short.example", "Eleni", "Παραγγελία αριθμός")),
    }
    return {**store, **{k: r.conversation_id for k, r in ids.items()}}


def pages(engine, q, limit, **kw) -> list[list[int]]:
    """Every page of a q= listing, as conversation ids."""
    seen, cursor = [], None
    while True:
        page = list_conversations(engine, ConversationFilter(q=q, limit=limit, cursor=cursor, **kw))
        seen.append([c["id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def plain_pages(engine, q, limit, monkeypatch, **kw) -> list[list[int]]:
    with monkeypatch.context() as m:
        m.setattr(substrings, "SEARCH_MIN_CHARS", 10_000)
        return pages(engine, q, limit, **kw)


@pytest.mark.parametrize(
    "q, expected",
    [
        ("jq", {"subject_end"}),  # the end of a subject
        ("JQ", {"subject_end"}),  # case does not matter
        ("7j", {"subject_end"}),
        ("wu", {"name_end"}),  # the end of a name
        ("Wu", {"name_end"}),
        ("89", {"address_end"}),  # the end of an address (+442079460989)
        ("xu", {"whole_name"}),  # a whole document of two characters
        ("tt", {"bob"}),  # the middle (kettle)
        ("_b", {"ana_refund"}),  # LIKE's wildcards are plain characters
        ("0%", {"ana_refund"}),
        ('t"', {"bob"}),  # a quote (fast")
        ("ός", {"greek"}),  # FTS5 folds the final sigma as σ, which str.lower() does not
        ("zq", set()),
    ],
)
def test_two_characters_are_found_anywhere(engine, short, monkeypatch, q, expected):
    want = {short[k] for k in expected}
    assert found(engine, q) == want == plain(engine, q, monkeypatch)
    assert indexed(engine, q) == want  # the index answers, not the plain query


def test_two_characters_matching_nothing_give_an_empty_page_from_the_index(engine, short):
    assert list_conversations(engine, ConversationFilter(q="zq")) == {"items": [], "next_cursor": None}
    with read_tx(engine) as conn:
        assert substrings.candidates(conn, "zq") == ([], False)
        assert not page.common_recently(conn, "zq")  # rare lately: the index answers
        assert substrings.candidates(conn, "z") == (None, False)  # one character: no index


def test_postgresql_indexes_the_bigrams_of_the_three_columns(engine, short):
    if engine.dialect.name != "postgresql":
        pytest.skip("the bigram indexes are PostgreSQL's (SQLite reads its trigram index's vocabulary)")
    with read_tx(engine) as conn:
        bigrams = conn.execute(
            text("SELECT search_bigrams('Hello'), search_bigrams('ÄBä'), search_bigrams('a'), search_bigrams(NULL)")
        ).one()
        assert sorted(bigrams[0]) == ["el", "he", "ll", "lo"]
        folded = conn.execute(text("SELECT lower('ÄB'), lower('Bä')")).one()  # as the cluster's locale folds
        assert sorted(bigrams[1]) == sorted(folded)
        assert bigrams[2] == [] and bigrams[3] is None  # never @> a search's bigram
        volatility = conn.execute(text("SELECT provolatile, proparallel FROM pg_proc WHERE proname = 'search_bigrams'")).one()
        assert tuple(volatility) == ("i", "s")  # IMMUTABLE (an index may use it), PARALLEL SAFE
        # The lookups candidates() makes, column by column: through the expression indexes on the
        # folded column (migration 0025), two characters by bigrams, three by trigrams
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        for table, column in (("conversation", "subject"), ("customer", "name"), ("identity", "address")):
            plan = conn.execute(
                text(
                    f"EXPLAIN SELECT id FROM {table} WHERE search_bigrams(search_fold({column})) "
                    f"@> search_bigrams(search_fold('ZÉ')) AND search_fold({column}) LIKE '%' || search_fold('ZÉ') || '%'"
                )
            ).scalars().all()
            assert any(f"search_{table}_{column}_fold_bigrams" in line for line in plan), plan
            plan = conn.execute(
                text(f"EXPLAIN SELECT id FROM {table} WHERE search_fold({column}) LIKE '%' || search_fold('ZÉQ') || '%'")
            ).scalars().all()
            assert any(f"search_{table}_{column}_fold_trgm" in line for line in plan), plan


def test_two_characters_page_as_the_plain_query_does(engine, short, monkeypatch):
    for i in range(9):
        ingest(engine, mail(f"<c{i}@x>", f"c{i}@common.example", f"Cam {i}", f"Common question {i}"))
    # "qu": question (subjects) and Quixote (a name), 10 conversations
    assert pages(engine, "qu", 3) == plain_pages(engine, "qu", 3, monkeypatch) and sum(map(len, pages(engine, "qu", 3))) == 10
    assert pages(engine, "qu", 4, channel="email") == plain_pages(engine, "qu", 4, monkeypatch, channel="email")
    monkeypatch.setattr(substrings, "SEARCH_MAX_CANDIDATES", 4)  # now common: walked, same pages
    with read_tx(engine) as conn:
        assert substrings.candidates(conn, "qu") == (None, True)
    assert pages(engine, "qu", 3) == plain_pages(engine, "qu", 3, monkeypatch)


def test_a_text_holding_the_end_mark_is_searched_without_the_index(engine, short, monkeypatch):
    q = "jq" + SEARCH_END  # the index would find it at the end of "Invoice 7JQ"; the text is not there
    if engine.dialect.name == "sqlite":
        with read_tx(engine) as conn:
            assert substrings.candidates(conn, q) == (None, False)
            assert substrings.candidates(conn, "q" + SEARCH_END) == (None, False)
    assert found(engine, q) == set() == plain(engine, q, monkeypatch)


def test_search_fold_is_the_trigram_tokenizers_case_without_accents():
    # the tokenizer's case folding (ς and ſ as σ and s, which str.lower() keeps), accents dropped
    assert search_fold("KO") == "ko" and search_fold("ΌΣ") == "οσ" and search_fold("ος") == "οσ"
    assert search_fold("ſT") == "st" and search_fold("東京") == "東京" and search_fold("İx") == "ix"
    assert search_fold("Chloé ÅNGSTRÖM") == "chloe angstrom" and search_fold("Chlo\u0065\u0301") == "chloe"  # composed or not
    assert search_fold("ＡＢＣ１ ﬁ ½ 𝐀") == "abc1 fi 1⁄2 a"  # compatibility forms: full-width, ligatures, fractions
    assert search_fold("Straße ẞ Øre Æble Łódź") == "strasse ss ore aeble lodz"  # letters unaccent spells out
    assert search_fold(None) is None and search_fold("") == ""
    for written in ("Crème brûlée", "ΌΣ", "ǅ", "ﬃ", "Ⅻ", "㎏", "İ"):
        assert search_fold(search_fold(written)) == search_fold(written)  # the index's text, folded again by a query, stays
    assert sqlite3.connect(":memory:").execute(f"SELECT {SEARCH_END_SQL}").fetchone()[0] == SEARCH_END
    migration = importlib.import_module("hub.store.migrations.versions.0013_search_end_mark")
    assert migration.END == SEARCH_END_SQL


def test_migrating_to_0013_indexes_the_rows_with_the_end_mark(db_url, store):
    cfg = alembic_config(db_url)
    sqlite = db_url.startswith("sqlite")
    at_end = text("SELECT count(*) FROM search_text WHERE search_text MATCH :q").bindparams(q='"ks' + SEARCH_END + '"')
    command.downgrade(cfg, "0012")
    fresh = make_engine(db_url)
    try:
        if sqlite:  # indexed as before: nothing after a document's last two characters
            with fresh.connect() as conn:
                assert conn.execute(at_end).scalar() == 0
                assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'search_text_terms'")).scalar() == 0
                assert conn.execute(text("SELECT count(*) FROM search_pending")).scalar() == 0
    finally:
        fresh.dispose()
    upgrade(db_url)
    fresh = make_engine(db_url)
    try:
        if sqlite:
            with fresh.connect() as conn:
                assert conn.execute(at_end).scalar() == 1  # leaKS
            with read_tx(fresh) as conn:
                assert substrings.candidates(conn, "ks") == ([store["bob"]], False)
                assert sorted(substrings.candidates(conn, "13")[0]) == [store["ana_order"]]  # order 482(13)
        assert found(fresh, "ks") == {store["bob"]}
        later = ingest(fresh, mail("<after@x>", "yan@example.com", "Yan", "Kettle again, KS"))
        assert found(fresh, "ks") == {store["bob"], later.conversation_id}
    finally:
        fresh.dispose()


# --- folding: case, accents and compatibility forms --------------------------------------------
#
# Subjects, names and addresses are compared folded on both sides (hub.store.db.search_fold on
# SQLite, lower(unaccent()) on PostgreSQL: migration 0025), as message words already were.


@pytest.fixture
def accented(engine, store):
    """An accented name (a phone call), subject and email address, a plain name an accented query
    must find, and a subject in full-width letters; returns conversation ids by a short name (the store's too)."""
    ids = {
        "chloe_call": ingest(engine, InboundMessage("voice", "call-fr", Sender("+33612345678", "Chloé Martin"), "appel")),
        "damaged": ingest(engine, mail("<f1@x>", "sam@colis.example", "Sam", "Réclamation : colis abîmé")),
        "elodie": ingest(engine, mail("<f2@x>", "élodie.župan@mail.example", "E. Z.", "Hello")),
        "plain_name": ingest(engine, mail("<f3@x>", "fd@plain.example", "Francois Dupre", "Question")),
        "full_width": ingest(engine, mail("<f4@x>", "wide@plain.example", "Wide", "Order ＡＢ９")),
        "nordic": ingest(engine, mail("<f5@x>", "js@plain.example", "Jørgen Straße", "Hej")),
    }
    return {**store, **{k: r.conversation_id for k, r in ids.items()}}


@pytest.mark.parametrize(
    "q, expected",
    [
        ("chloe", {"chloe_call"}),  # a name, unaccented
        ("CHLOÉ MAR", {"chloe_call"}),  # another case, accented
        ("chlo\u0065\u0301", {"chloe_call"}),  # the accent as a combining mark
        ("abime", {"damaged"}),  # a subject
        ("RECLAMATION", {"damaged"}),
        ("elodie.zupan", {"elodie"}),  # an email address
        ("ÉLODIE", {"elodie"}),
        ("françois dupré", {"plain_name"}),  # an accented query finds the text written without
        ("JORGEN STRASSE", {"nordic"}),  # letters without a decomposition, spelt as unaccent spells them
        ("jørgen", {"nordic"}),
        ("ab9", {"full_width"}),  # full-width letters and digits
        ("ＡＢ９", {"full_width"}),
        ("zu", {"elodie"}),  # two characters (župan)
        ("ŽU", {"elodie"}),
        ("ÎM", {"damaged"}),  # abîmé
        ("Ｂ９", {"full_width"}),
        ("ž", {"elodie"}),  # one character
        ("\u0301" * 50, set()),  # marks alone fold to nothing: nothing found, not everything
    ],
)
def test_search_folds_case_and_accents_of_subjects_names_and_addresses(engine, accented, monkeypatch, q, expected):
    want = {accented[k] for k in expected}
    assert found(engine, q) == want == plain(engine, q, monkeypatch)
    if len(search_fold(q)) >= 2:
        assert indexed(engine, q) == want  # the index answers, not the plain query


def test_a_common_folded_text_is_walked_with_the_same_pages(engine, accented, monkeypatch):
    for i in range(9):
        ingest(engine, mail(f"<z{i}@x>", f"z{i}@common.example", f"Zoé Ångström {i}", f"Hello {i}"))
    monkeypatch.setattr(substrings, "SEARCH_MAX_CANDIDATES", 4)
    for q in ("ANGSTROM", "Ångström", "zo", "GŠ"):
        with read_tx(engine) as conn:
            assert substrings.candidates(conn, q) == (None, True)  # too many for the index: the walk
        assert pages(engine, q, 4) == plain_pages(engine, q, 4, monkeypatch)
        assert sum(map(len, pages(engine, q, 4))) == 9
    monkeypatch.setattr(page, "COMMON_PROBE_HITS", 2)  # common lately too: the walk from the first page
    assert pages(engine, "angstrom", 4) == plain_pages(engine, "angstrom", 4, monkeypatch)


def test_the_queue_folds_as_the_index_does(engine, accented, monkeypatch, caplog):
    with engine.begin() as conn:  # not write_tx: on SQLite the triggers' rows stay queued
        conn.execute(update(conv_t).where(conv_t.c.id == accented["bob"]).values(subject="Crème brûlée ÉCLAIR"))
    for q in ("creme brulee", "ÉCLAIR", "ÛL"):  # from the queue
        assert found(engine, q) == {accented["bob"]} == plain(engine, q, monkeypatch)
    index_search_queue(engine)  # into the index, folded
    for q in ("creme brulee", "ÉCLAIR", "ÛL"):
        assert indexed(engine, q) == found(engine, q) == {accented["bob"]}
    with write_tx(engine) as conn:  # the index forgets the folded text it was given: no rebuild needed
        conn.execute(update(conv_t).where(conv_t.c.id == accented["bob"]).values(subject="Kettle"))
        conn.execute(update(cust_t).where(cust_t.c.name == "Chloé Martin").values(name="Chloé Dupont"))
    index_search_queue(engine)
    assert indexed(engine, "brulee") == set() and indexed(engine, "martin") == set()
    assert indexed(engine, "chloe dupont") == {accented["chloe_call"]}
    assert "rebuilding" not in caplog.text
    if engine.dialect.name == "sqlite":  # the index holds the folded text only
        with engine.connect() as conn:
            match = text("SELECT count(*) FROM search_text WHERE search_text MATCH :q")
            assert conn.execute(match, {"q": '"chloe dupont"'}).scalar() == 1
            assert conn.execute(match, {"q": '"chloé"'}).scalar() == 0


def test_a_session_without_the_function_still_writes_and_its_rows_are_found_folded(db_url, engine, accented):
    if not db_url.startswith("sqlite"):
        pytest.skip("search_fold() is SQLite's per connection; PostgreSQL's is in the database")
    shell = sqlite3.connect(db_url.removeprefix("sqlite:///"))  # as the sqlite3 shell would: no search_fold()
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such function"):
            shell.execute("SELECT search_fold('x')")
        shell.execute("UPDATE conversation SET subject = 'Hand-edited Ünïcode' WHERE id = ?", (accented["bob"],))
        shell.commit()  # the triggers queue the text as written: they call no function of the hub's
    finally:
        shell.close()
    assert found(engine, "unicode") == {accented["bob"]}  # from the queue
    index_search_queue(engine)
    assert indexed(engine, "hand-edited unicode") == {accented["bob"]}
    migration = importlib.import_module("hub.store.migrations.versions.0025_search_fold")
    assert migration.END == SEARCH_END_SQL


def test_rows_written_before_migration_0025_are_found_folded_after_it(db_url, accented):
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "0024")  # the index as 0024 had it: texts as written
    fresh = make_engine(db_url)
    try:
        if db_url.startswith("sqlite"):
            with fresh.connect() as conn:
                match = text("SELECT count(*) FROM search_text WHERE search_text MATCH :q")
                assert conn.execute(match, {"q": '"chloé"'}).scalar() == 1
                assert conn.execute(match, {"q": '"chloe"'}).scalar() == 0
        else:
            with fresh.connect() as conn:
                names = conn.execute(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'search_%_trgm'")).scalars().all()
                assert sorted(names) == sorted(i.replace("_fold", "") for i in substrings._PG_SEARCH_INDEXES)
                assert conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'search_fold'")).scalar() == 0
    finally:
        fresh.dispose()
    upgrade(db_url)
    fresh = make_engine(db_url)
    try:
        with read_tx(fresh) as conn:
            assert substrings.candidates(conn, "chloe") == ([accented["chloe_call"]], False)
            assert substrings.candidates(conn, "ZU") == ([accented["elodie"]], False)
            assert sorted(substrings.candidates(conn, "reclamation")[0]) == [accented["damaged"]]
        assert found(fresh, "abime") == {accented["damaged"]}
        later = ingest(fresh, mail("<after@x>", "noe@example.com", "Noé", "Abîmé aussi"))
        assert found(fresh, "ABIME") == {accented["damaged"], later.conversation_id}
    finally:
        fresh.dispose()


def test_hostile_texts_fold_in_linear_time_and_error_nothing(engine, accented, monkeypatch):
    marks = "\u0301\u0316" * 5000  # 10,000 combining marks of two classes: NFKD of a whole text would sort them
    subject = "Chloé " + marks[:480] + " Ångström"  # the columns full of them (subject: 500 characters, name 200)
    with write_tx(engine) as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == accented["bob"]).values(subject=subject))
        conn.execute(update(cust_t).where(cust_t.c.name == "Carla Mendes").values(name="Ñ" + marks[:199]))
    assert found(engine, "chloe  angstrom") == {accented["bob"]}
    assert found(engine, "chloe") == {accented["bob"], accented["chloe_call"]}
    assert found(engine, "c" + marks + "hloé") == {accented["bob"], accented["chloe_call"]}  # a query of 10,000 marks too
    assert found(engine, marks) == set() == plain(engine, marks, monkeypatch)  # folds to nothing
    assert found(engine, "ñ" + marks) == plain(engine, "ñ" + marks, monkeypatch)
    # a long query (search boxes let 200 characters through; SQLite's LIKE takes patterns up to 50,000 bytes)
    huge = "ＡＢ" * 5_000
    assert found(engine, huge) == set() == plain(engine, huge, monkeypatch)
    assert search_fold(marks * 100 + "ＡＢ" * 500_000) == "ab" * 500_000  # a million marks, a million letters

"""Articles in the store and the index that follows it, on SQLite and PostgreSQL: CRUD, an edit
re-embeds only the passages it changed, unpublishing and deleting take passages out of the index,
and a restart loads the saved index, or rebuilds it from the store (from the stored vectors)
when it is missing, damaged, or behind the store. The model is real, loaded once per session."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.contract.errors import NotFound, PermissionDenied, RejectedInput
from hub.contract.principal import Principal
from hub.kb import articles as kb
from hub.kb.index import KnowledgeIndex, shared_embedder

ADMIN = Principal("agent", 1, "admin", "admin@example.com")
AGENT = Principal("agent", 2, "agent", "agent@example.com")



def body(europe_days: str = "four to eight") -> str:
    sections = {
        "United Kingdom": "Parcels within the United Kingdom take two to four working days. " * 6,
        "Europe": f"Parcels to Europe take {europe_days} working days with tracked delivery. " * 6,
        "Rest of the world": "Parcels to the rest of the world take six to twelve working days. " * 6,
    }
    return "Where we ship and how long it takes.\n\n" + "\n\n".join(f"## {name}\n{text}" for name, text in sections.items())


def index_for(engine, tmp_path) -> KnowledgeIndex:
    return KnowledgeIndex(engine, tmp_path / "kb-index", shared_embedder())


def stored(engine, article_id: int) -> dict[str, bytes | None]:
    with engine.connect() as conn:
        rows = conn.execute(select(kb.chunk_t.c.passage_id, kb.chunk_t.c.vector).where(kb.chunk_t.c.article_id == article_id))
        return dict(rows.all())


def create(engine, title="Shipping times", text=None, **extra):
    fields = kb.ArticleFields(title=title, body=text or body(), **extra)
    return kb.create_article(engine, fields, ADMIN, max_chars=600)


def test_article_crud_and_who_may_write(engine):
    article = create(engine, tags=("shipping",))
    assert article["published"] and article["tags"] == ["shipping"] and len(article["passages"]) == 4
    assert [p["heading"] for p in article["passages"]] == ["", "United Kingdom", "Europe", "Rest of the world"]

    draft = kb.create_article(engine, kb.ArticleFields(title="Draft", body="Text"), AGENT)
    assert draft["published"] is False
    with pytest.raises(PermissionDenied):
        kb.update_article(engine, draft["id"], kb.ArticleFields(published=True), AGENT)
    with pytest.raises(PermissionDenied):
        kb.update_article(engine, article["id"], kb.ArticleFields(title="x"), AGENT)
    with pytest.raises(PermissionDenied):
        kb.delete_article(engine, draft["id"], AGENT)
    with pytest.raises(RejectedInput):
        kb.create_article(engine, kb.ArticleFields(title="Bad", body="x", format="html"), ADMIN)

    updated = kb.update_article(engine, article["id"], kb.ArticleFields(tags=("shipping", "europe")), ADMIN)
    assert updated["tags"] == ["shipping", "europe"] and updated["updated_at"] >= article["updated_at"]
    assert kb.list_articles(engine, published=False)["items"][0]["id"] == draft["id"]

    kb.delete_article(engine, article["id"], ADMIN)
    with pytest.raises(NotFound):
        kb.get_article(engine, article["id"])
    assert stored(engine, article["id"]) == {}


def test_an_edit_reembeds_only_the_passages_it_changed(engine, tmp_path):
    index = index_for(engine, tmp_path)
    article = create(engine)
    first = index.open()
    assert (first.added, first.encoded) == (4, 4)
    before = stored(engine, article["id"])
    assert all(before.values())  # the vectors are kept beside their passages

    kb.update_article(engine, article["id"], kb.ArticleFields(body=body(europe_days="three to six")), ADMIN)
    report = index.sync([article["id"]])
    assert (report.added, report.removed, report.encoded) == (1, 1, 1)
    after = stored(engine, article["id"])
    kept = set(before) & set(after)
    assert len(kept) == 3 and all(after[pid] == before[pid] for pid in kept)
    assert index.search("how long to Europe", k=1).hits[0].snippet.count("three to six")

    # A title change changes what every passage embeds (the title is part of it).
    kb.update_article(engine, article["id"], kb.ArticleFields(title="Delivery times"), ADMIN)
    assert index.sync([article["id"]]).encoded == 4
    assert index.sync().changed is False  # nothing left to do


def test_unpublishing_and_deleting_take_passages_out_of_the_index(engine, tmp_path):
    index = index_for(engine, tmp_path)
    article = create(engine)
    other = create(engine, title="Refunds", text="We refund within three working days of receiving your return.")
    index.open()
    assert len(index) == 5

    kb.update_article(engine, article["id"], kb.ArticleFields(published=False), ADMIN)
    assert index.sync([article["id"]]).removed == 4
    assert {h.article_id for h in index.search("parcels to Europe", k=5).hits} == {str(other["id"])}

    # Publishing again reuses the stored vectors: nothing is embedded.
    kb.update_article(engine, article["id"], kb.ArticleFields(published=True), ADMIN)
    report = index.sync([article["id"]])
    assert (report.added, report.encoded) == (4, 0)

    kb.delete_article(engine, article["id"], ADMIN)
    assert index.sync([article["id"]]).removed == 4
    assert len(index) == 1


def test_a_restart_loads_the_saved_index_or_rebuilds_it_from_the_store(engine, tmp_path):
    index = index_for(engine, tmp_path)
    article = create(engine)
    index.open()
    assert index.save()

    again = index_for(engine, tmp_path)
    report = again.open()
    assert not report.changed and len(again) == 4

    # Changes the index missed while the hub was down (a failed update, another process, the CLI).
    late = create(engine, title="Refunds", text="We refund within three working days of receiving your return.")
    kb.delete_article(engine, article["id"], ADMIN)
    caught_up = index_for(engine, tmp_path).open()
    assert (caught_up.added, caught_up.removed, caught_up.encoded) == (1, 4, 1)

    # A damaged index is rebuilt from the store, from the vectors kept there.
    (tmp_path / "kb-index" / "state.json").write_text("{not json")
    rebuilt = index_for(engine, tmp_path)
    report = rebuilt.open()
    assert (report.added, report.encoded) == (1, 0)
    assert rebuilt.search("when do I get my refund", k=1).hits[0].article_id == str(late["id"])


def test_imports_update_by_source_key_instead_of_duplicating(engine):
    fields = kb.ArticleFields(title="Refunds", body="Three working days.", tags=("refunds",))
    assert kb.upsert_by_source(engine, fields, "/faq.csv#Refunds")[0] == "created"
    outcome, article_id = kb.upsert_by_source(engine, fields, "/faq.csv#Refunds")
    assert outcome == "unchanged"
    changed = kb.ArticleFields(title="Refunds", body="Five working days.", tags=("refunds",), published=True)
    kb.update_article(engine, article_id, kb.ArticleFields(published=False), ADMIN)
    assert kb.upsert_by_source(engine, changed, "/faq.csv#Refunds") == ("updated", article_id)
    article = kb.get_article(engine, article_id)
    # The text follows the file; an admin's unpublishing stands.
    assert article["body"] == "Five working days." and article["published"] is False
    assert len(kb.list_articles(engine)["items"]) == 1

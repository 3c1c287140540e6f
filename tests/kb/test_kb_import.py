"""Importing articles: Markdown, HTML, CSV/JSON/JSONL FAQ files into drafts (knowledge/importers.py),
problems named by file and line without stopping the rest, and `servicehub kb import` twice
updating instead of duplicating (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil

import pytest

from hub.cli.main import main
from knowledge.importers import find_files, read_file, read_path
from tests.conftest import FIXTURES


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "kb"
    (root / "guides").mkdir(parents=True)
    (root / "guides" / "returns.md").write_text(
        "---\ntags: [returns, refunds]\nlanguage: en\n---\n# Returns and refunds\n\nReturn any item within 30 days.\n\n"
        "## How to return\nPrint the label from your account.\n"
    )
    (root / "guides" / "lagos.html").write_text(
        "<!doctype html><html lang='en'><head><title>Shipping to Lagos</title><script>alert('x')</script></head>"
        "<body><nav>Home | Shop</nav><main><h1>Shipping to Lagos</h1><p onclick='x()'>We ship to <b>Lagos</b> in 7-12 days.</p>"
        "<h2>Customs</h2><ul><li>Duties are paid on delivery.</li><li>DHL calls you first.</li></ul></main>"
        "<footer>(c) Shop</footer></body></html>"
    )
    (root / "faq.csv").write_text(
        "question,answer,tags,language\n"
        "How long is delivery?,2-4 working days in the UK.,shipping;delivery,en\n"
        "Do you ship abroad?,\"Yes, to over 60 countries.\",,\n"
    )
    (root / "faq.json").write_text(json.dumps([
        {"question": "Which cards do you accept?", "answer": "Visa, Mastercard and Amex.", "tags": ["payments"]},
        {"question": "支持哪些付款方式？", "answer": "我们接受 Visa 和 PayPal。", "language": "zh"},
    ]))
    (root / "more.jsonl").write_text(
        '{"question": "Can I change my address?", "answer": "Yes, until the order is packed."}\n'
        '\n'
        '{"question": "Can I cancel?", "answer": "Until it is packed."}\n'
    )
    (root / ".hidden.md").write_text("# Secret\n\nnot imported")
    (root / "notes.txt").write_text("ignored: not a supported type")
    return root


def test_every_format_becomes_drafts(library):
    files = [f.relative_to(library).as_posix() for f in find_files(library)]
    assert files == ["faq.csv", "faq.json", "guides/lagos.html", "guides/returns.md", "more.jsonl"]
    result = read_path(library)
    assert result.problems == []
    drafts = {d.title: d for d in result.drafts}
    assert len(drafts) == 8

    md = drafts["Returns and refunds"]
    assert md.tags == ("returns", "refunds") and md.format == "markdown"
    assert md.body.startswith("Return any item") and "## How to return" in md.body
    assert md.source_key == (library / "guides" / "returns.md").resolve().as_posix()

    html = drafts["Shipping to Lagos"]
    assert html.body == "We ship to **Lagos** in 7-12 days.\n\n## Customs\n\n- Duties are paid on delivery.\n- DHL calls you first."
    assert "alert" not in html.body and "Home" not in html.body and "(c)" not in html.body

    faq = drafts["Do you ship abroad?"]
    assert faq.body == "Yes, to over 60 countries." and faq.format == "text" and faq.language == "en"
    assert faq.source_key.endswith("faq.csv#Do you ship abroad?")
    assert drafts["How long is delivery?"].tags == ("shipping", "delivery")
    assert drafts["支持哪些付款方式？"].language == "zh"
    assert drafts["Can I cancel?"].location.endswith("more.jsonl:3")


def test_bad_input_is_reported_by_file_and_line_and_the_rest_imported(tmp_path):
    (tmp_path / "bad.csv").write_text("question,answer\nGood?,Yes\n,no question\nNo answer?,\nToo,many,fields\nGood again?,Yes\n")
    (tmp_path / "broken.json").write_text('[{"question": "a", "answer": "b"},\n {"question": ]')
    (tmp_path / "lines.jsonl").write_text('{"question": "Ok?", "answer": "ok"}\n{oops}\n[1, 2]\n{"question": "Ok?", "answer": "again"}\n')
    (tmp_path / "latin1.md").write_bytes("# Caf\xe9\n\nna\xefve".encode("latin-1"))
    (tmp_path / "empty.html").write_text("")
    (tmp_path / "yaml.md").write_text("---\ntags: [unclosed\n---\n# T\n\nbody")
    shutil.copy(FIXTURES / "faq" / "banking77-train.csv", tmp_path / "banking77.csv")  # text,category: no answers

    result = read_path(tmp_path)
    problems = sorted(str(p).replace(str(tmp_path) + "/", "") for p in result.problems)
    assert problems == [
        "bad.csv:3: no question",
        "bad.csv:4: no answer",
        "bad.csv:5: 3 fields but the header has 2 (a comma in an unquoted field?)",
        "banking77.csv:1: the header needs a 'question' and an 'answer' column; it has: text, category",
        "broken.json:2: not valid JSON: Expecting value (column 15)",
        "empty.html: the file is empty",
        "latin1.md:1: not UTF-8 text (byte 5); save the file as UTF-8",
        "lines.jsonl:2: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        "lines.jsonl:3: the line is not a JSON object",
        "lines.jsonl:4: the same question again (first at lines.jsonl:1); skipped",
        "yaml.md:2: the front matter is not valid YAML: expected ',' or ']', but got '<stream end>'",
    ]
    assert sorted(d.title for d in result.drafts) == ["Good again?", "Good?", "Ok?"]
    unsupported = read_file(tmp_path / "notes.txt")
    assert "unsupported file type .txt" in str(unsupported.problems[0])


def test_cli_import_twice_updates_instead_of_duplicating(library, db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SERVICEHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SERVICEHUB_DATABASE_URL", db_url)
    monkeypatch.setenv("SERVICEHUB_CONFIG", str(tmp_path / "none.toml"))

    assert main(["kb", "import", str(library)]) == 0
    out = capsys.readouterr().out
    assert "5 files: 8 created, 0 updated, 0 unchanged, 0 failed" in out
    assert "index: 8 passages" in out and (tmp_path / "data" / "kb-index" / "state.json").is_file()

    (library / "faq.csv").write_text(
        "question,answer\nHow long is delivery?,1-3 working days in the UK.\nDo you ship abroad?,\"Yes, to over 60 countries.\"\n"
        "Broken row?\n"
    )
    assert main(["kb", "import", str(library)]) == 1  # one failure: the exit status says so
    out = capsys.readouterr()
    assert "5 files: 0 created, 1 updated, 7 unchanged, 1 failed" in out.out
    assert "faq.csv:4: no answer" in out.err

    assert main(["kb", "import", str(tmp_path / "missing")]) == 2
    assert main(["kb", "reindex"]) == 0
    assert "index rebuilt: 8 passages (0 embedded, 8 from stored vectors)" in capsys.readouterr().out


def test_cli_eval_runs_the_retrieval_evaluation(tmp_path, capsys):
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps(a) + "\n" for a in [
        {"id": "refunds", "title": "Refunds", "body": "We refund within three working days of receiving your return."},
        {"id": "lagos", "title": "Shipping to Lagos", "body": "Parcels to Lagos, Nigeria take 7-12 working days with DHL."},
    ]))
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"query": "how long does delivery to Lagos take", "relevant": ["lagos"]}) + "\n"
                       + json.dumps({"query": "what is the capital of France", "relevant": []}) + "\n")
    assert main(["kb", "eval", "--articles", str(articles), "--queries", str(queries), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"hybrid", "lexical", "dense"} and results["hybrid"]["queries"] == 2
    assert main(["kb", "eval", "--articles", str(tmp_path / "nope.jsonl"), "--queries", str(queries)]) == 2

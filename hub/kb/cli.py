"""servicehub kb ...: import articles, rebuild the index, evaluate retrieval."""

from __future__ import annotations

import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register `kb import`, `kb reindex` and `kb eval` on the servicehub parser."""
    parser = sub.add_parser("kb", help="knowledge base: import articles, rebuild the index, evaluate retrieval")
    kb_sub = parser.add_subparsers(dest="kb_command", required=True)

    p = kb_sub.add_parser(
        "import",
        help="import Markdown, HTML, and CSV/JSON/JSONL FAQ files (a file or a folder, recursively)",
        description="Import articles. Importing the same files again updates their articles instead of duplicating "
        "them (articles are keyed by the file's path, plus the question for FAQ rows). FAQ files need the columns "
        "or keys question and answer; tags and language are optional.",
    )
    p.add_argument("path", type=Path)
    p.add_argument("--language", default="en", help="language of articles that do not say (default en)")
    p.add_argument("--draft", action="store_true", help="create new articles unpublished (an admin publishes them)")
    p.add_argument("--no-index", action="store_true",
                   help="write the store only; a running hub picks the articles up, or run `servicehub kb reindex`")
    p.set_defaults(func=cmd_import)

    p = kb_sub.add_parser("reindex", help="re-cut every article into passages and rebuild the persisted index from the store")
    p.set_defaults(func=cmd_reindex)

    p = kb_sub.add_parser("eval", help="measure retrieval quality on labelled questions")
    try:
        from knowledge.evaluation import add_eval_arguments
    except ImportError:  # pragma: no cover - the evaluation module is part of the package
        add_eval_arguments = None
    if add_eval_arguments is not None:
        add_eval_arguments(p)
    p.set_defaults(func=cmd_eval)


def _engine(settings):
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(settings.effective_database_url)
    return make_engine(settings.effective_database_url, pool_size=2)


def _index(settings, engine):
    from hub.kb.index import KnowledgeIndex, shared_embedder

    conf = settings.kb
    return KnowledgeIndex(engine, conf.index_dir or settings.data_dir / "kb-index", shared_embedder(conf.model_path),
                          min_confidence=conf.min_confidence)


def _progress_bar(desc: str):
    """A progress(done, total) callback drawing a tqdm bar; close() it after."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="passage", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    progress.close = bar.close  # type: ignore[attr-defined]
    return progress


def cmd_import(args, settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError
    from tqdm import tqdm

    from hub.contract.errors import HubError
    from hub.kb import articles as kb
    from knowledge.importers import find_files, read_file

    try:
        files = find_files(args.path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"nothing to import in {args.path} (looked for .md, .markdown, .html, .htm, .csv, .json, .jsonl)")
        return 0
    engine = _engine(settings)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    problems: list[str] = []
    with tqdm(files, desc="importing", unit="file", file=sys.stderr) as bar:
        for file in bar:
            result = read_file(file, language=args.language)
            for problem in result.problems:
                counts["failed"] += 1
                problems.append(str(problem))
                bar.write(f"skipped: {problem}", file=sys.stderr)
            for draft in result.drafts:
                published = draft.published if draft.published is not None else not args.draft
                fields = kb.ArticleFields(title=draft.title, body=draft.body, format=draft.format, language=draft.language,
                                          tags=draft.tags, published=published)
                try:
                    outcome, _ = kb.upsert_by_source(engine, fields, draft.source_key, actor="cli",
                                                     max_chars=settings.kb.passage_chars)
                except (HubError, SQLAlchemyError, ValueError) as exc:
                    counts["failed"] += 1
                    message = getattr(exc, "message", None) or str(exc).splitlines()[0]
                    problems.append(f"{draft.location}: {message}")
                    bar.write(f"failed: {draft.location}: {message}", file=sys.stderr)
                    continue
                counts[outcome] += 1
    print(f"{len(files)} files: {counts['created']} created, {counts['updated']} updated, "
          f"{counts['unchanged']} unchanged, {counts['failed']} failed")
    if not args.no_index and (counts["created"] or counts["updated"]):
        _update_index(settings, engine)
    engine.dispose()
    return 1 if counts["failed"] else 0


def _update_index(settings, engine) -> None:
    index = _index(settings, engine)
    progress = _progress_bar("indexing")
    try:
        report = index.open(progress=progress)
        index.save()
    finally:
        progress.close()
    print(f"index: {len(index)} passages ({report.added} added, {report.removed} removed, {report.encoded} embedded) "
          f"in {index.directory}")


def cmd_reindex(args, settings) -> int:
    from hub.kb import articles as kb

    engine = _engine(settings)
    cut = kb.repassage_all(engine, settings.kb.passage_chars)
    print(f"passages: {cut['added']} new, {cut['kept']} unchanged, {cut['removed']} removed")
    index = _index(settings, engine)
    progress = _progress_bar("indexing")
    try:
        report = index.rebuild(progress=progress)
    finally:
        progress.close()
    print(f"index rebuilt: {len(index)} passages ({report.encoded} embedded, {report.added - report.encoded} from stored vectors) "
          f"in {index.directory}")
    engine.dispose()
    return 0


def cmd_eval(args, settings) -> int:
    try:
        from knowledge.evaluation import run_eval
    except ImportError:  # pragma: no cover
        print("error: knowledge.evaluation is not available in this build", file=sys.stderr)
        return 2
    return run_eval(args)

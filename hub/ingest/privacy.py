"""Privacy parts of the inbound spool: the raw input channels received (a webhook's JSON, an
email's source as a file) before it became messages.

Export: the spool rows of their messages, with the raw file (base64). Erase: those rows, the rows
of other customers' messages that listed them (their raw source names them in its headers) and any
row whose payload names them (a rejected mail that never became a message) are deleted, and
their files with them unless another row still uses the same file.
"""

from __future__ import annotations

from sqlalchemy import Text, cast, or_, select

from hub.privacy import Erasure, Export, among, register, register_file_use, rows_of
from hub.store.models import InboundSpool

spool_t = InboundSpool.__table__


def export_spool(ex: Export) -> None:
    rows = rows_of(ex.conn, select(spool_t).where(among(spool_t.c.message_id, ex.subject.message_ids)).order_by(spool_t.c.id))
    for r in rows:
        if r.get("blob_sha256") and ex.blobs is not None and ex.include_files:
            r["raw_base64"] = ex.file(r["blob_sha256"])
    ex.sections["inbound_spool"] = rows


def erase_spool(er: Erasure) -> None:
    s = er.subject
    where = [among(spool_t.c.message_id, s.message_ids), among(spool_t.c.message_id, s.messages_naming)]
    where += [cast(spool_t.c.payload, Text).contains(n, autoescape=True) for n in s.needles]
    spooled = er.conn.execute(select(spool_t.c.id, spool_t.c.blob_sha256).where(or_(*where))).all()
    er.files |= {r.blob_sha256 for r in spooled if r.blob_sha256}
    er.counts["inbound_spool"] = er.conn.execute(spool_t.delete().where(among(spool_t.c.id, [r.id for r in spooled]))).rowcount


def files_used(conn, shas: list[str]) -> set[str]:
    return set(conn.execute(select(spool_t.c.blob_sha256).where(among(spool_t.c.blob_sha256, shas))).scalars())


register(InboundSpool, export=export_spool, erase=erase_spool)
register_file_use(files_used)

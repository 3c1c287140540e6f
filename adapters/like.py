"""Free text inside a back end's LIKE filter.

Odoo hands an (=)ilike operand to PostgreSQL's ILIKE and Frappe (ERPNext) a like operand to
MariaDB's LIKE; in both % and _ are wildcards and a backslash escapes them. A customer's words go
into these filters, so unescaped, john_doe@example.com would match john.doe@example.com's partner
(and give away their orders), and "x_200" every item with one character between x and 200,
crowding the real one out of a limited page."""

from __future__ import annotations


def like_literal(value: str) -> str:
    """`value` as a LIKE operand that matches itself only (wrap it in % for "contains")."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""HTML is stored only after sanitising, whether a customer sent it or the hub sends it: what agents'
browsers render must be inert."""

from __future__ import annotations

import nh3

# Allow what mail clients use for layout and emphasis; drop scripts, styles, forms, event handlers.
_TAGS = set(nh3.ALLOWED_TAGS) | {"span", "div", "font", "center", "u", "s", "hr", "img"}
_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "font": {"color"},
}
# cid: points at an inline attachment; http(s) images stay (the UI may block remote loads).
_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def sanitize_html(html: str | None) -> str | None:
    if html is None:
        return None
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )

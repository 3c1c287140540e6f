"""Interface text in the reader's language: gettext catalogs (Babel's .po files under hub/locale),
the language of the current request or message, and choosing a language from what is known.

One catalog domain ("messages") holds every string of the hub and its channels: the agents' inbox,
the web form's pages, the survey pages and mails, the automatic answers. Text is written in English
in the code (`_("Sign out")`) and looked up in the catalog of the language in use; a string with no
translation stays English, never empty.

The language in use is a context variable, set per request (the inbox: the agent's choice; the
customers' pages: their browser's Accept-Language) or around a piece of work (`with use("zh"):`
while wording a mail to a customer known to write Chinese). Templates and Python code call the same
`gettext`, so a message formatted in a handler and a page rendered by it agree.

The .po files are read with Babel when first needed (no compiled .mo to build or keep in step);
`make messages` extracts the strings from the code into hub/locale/messages.pot and updates each
language's .po (docs/inbox.md: adding a language).

Like hub.contract.clock, this module is part of the contract: channels may import it.
"""

from __future__ import annotations

import contextlib
import functools
import gettext as _gettext
import io
import re
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
DEFAULT = "en"
# The languages an agent can pick, by code, with their names written in themselves (a reader who
# cannot read the current language still finds theirs).
LANGUAGES: dict[str, str] = {"en": "English", "zh": "简体中文"}
# The value of <html lang>: Chinese here is Simplified (a screen reader and the fonts need to know).
HTML_LANG = {"en": "en", "zh": "zh-Hans"}

_current: ContextVar[str] = ContextVar("servicehub_language", default=DEFAULT)


def normalise(code: str | None) -> str | None:
    """One of LANGUAGES for a language tag (en-GB, zh-CN, zh_Hans, ZH...), or None when none fits.

    Every Chinese tag maps to the Simplified catalog, Traditional ones included (zh-TW, zh-Hant):
    a reader of Traditional Chinese reads Simplified far more easily than English, and it is the
    only Chinese catalog."""
    if not code or not isinstance(code, str):
        return None
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None, *, default: str | None = DEFAULT) -> str | None:
    """The best of LANGUAGES for an Accept-Language header ("zh-CN,zh;q=0.9,en;q=0.8"), by the
    quality the browser gives each; `default` when none fits or the header is missing or unreadable.
    The header is the client's: only its first 64 entries are read, whatever its length."""
    best, best_q = None, 0.0
    for part in (accept_language or "")[:2000].split(",")[:64]:
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"\bq\s*=\s*([^;\s]*)", params[:100])
        if match:  # an unreadable quality: the entry is left out rather than taken as q=1
            if not re.fullmatch(r"[01](\.\d{0,3})?", match.group(1)):
                continue
            quality = float(match.group(1))
        code = normalise(tag)
        # Equal qualities: the earlier one wins (the browser lists the preferred first).
        if code and quality > 0 and quality > best_q:
            best, best_q = code, quality
    return best or default


@functools.cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalog of a language, read from its .po once; a NullTranslations (English) when there
    is none."""
    code = normalise(language) or DEFAULT
    po = LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if code == DEFAULT or not po.exists():
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle, locale=code.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries left out: a guessed translation is not shown
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def current() -> str:
    """The language text is produced in now (the request's, or the one `use` set)."""
    return _current.get()


def set_current(language: str | None) -> None:
    """Make `language` the current one for the rest of this task (a request's handler)."""
    _current.set(normalise(language) or DEFAULT)


@contextlib.contextmanager
def use(language: str | None) -> Iterator[str]:
    """Produce text in `language` (None or unknown: the default) inside the block."""
    code = normalise(language) or DEFAULT
    token = _current.set(code)
    try:
        yield code
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """`message` in the current language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for n in the current language (Chinese has one form)."""
    return translations(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` in the current language, told apart from the same English word in another sense."""
    return translations(_current.get()).pgettext(context, message)


def N_(message: str) -> str:
    """Marks a string for extraction without translating it now (a constant translated when shown)."""
    return message


class Word(str):
    """A value that is itself interface text (a field's name, "the address"), put into a message
    by `fill`, which translates it; mark its English with N_ where it is written: Word(N_("the note"))."""

    __slots__ = ()


def fill(template: str, params: dict | None = None) -> str:
    """`template` in the current language with `params` put in: the values that are Words are
    translated, the others (an address, a name, a number) shown as they are. A translation whose
    placeholders do not fit the values gives the English rather than failing."""
    if not params:
        return gettext(template)
    values = {k: gettext(v) if isinstance(v, Word) else v for k, v in params.items()}
    try:
        return gettext(template) % values
    except (KeyError, ValueError, TypeError):
        return template % params


_ = gettext


def install(env) -> None:
    """Give a Jinja2 environment `_`, `gettext`, `ngettext` and `{% trans %}` in the current language,
    plus `language()`, `html_lang()` and `languages` for the page.

    The callables are the environment's globals and read the context variable at render time, so
    macros imported without context and included templates translate too. New-style gettext:
    `_("%(n)s open", n=3)` formats after translating and autoescapes the values (a literal % in a
    message is written %%)."""
    env.add_extension("jinja2.ext.i18n")
    # {% trans %} blocks are looked up with their whitespace collapsed, as `make messages` extracts them.
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext)
    env.globals.update(language=current, html_lang=lambda: HTML_LANG.get(current(), current()), languages=LANGUAGES)

"""A web form's definition: its slug, title and fields, checked once when the hub starts.

The hub's settings hold forms as plain config objects (hub.config.settings.FormSettings); this channel
reads them by attribute, so it depends on no hub internals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hub.contract.errors import ConfigError

FIELD_TYPES = ("email", "phone", "order_number", "text", "textarea", "file")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Names the page itself uses; a configured field cannot take them.
TOKEN_FIELD = "_token"
HONEYPOT_FIELD = "homepage"
RESERVED = frozenset({TOKEN_FIELD, HONEYPOT_FIELD})

# Field names with a meaning beyond "show it to the agent".
NAME_FIELD = "name"
SUBJECT_FIELD = "subject"

_OPTIONAL_SUFFIX = re.compile(r"\s*\((optional|required)\)\s*$", re.I)


class FormConfigError(ConfigError):
    """A configured form cannot be served as it is; the message names the form and the problem."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str = "text"
    required: bool = False

    @property
    def html_id(self) -> str:
        return f"field-{self.name}"

    @property
    def plain_label(self) -> str:
        """The label without an '(optional)' note, for the message text an agent reads."""
        return _OPTIONAL_SUFFIX.sub("", self.label) or self.label


@dataclass(frozen=True)
class Form:
    slug: str
    title: str
    fields: tuple[Field, ...]
    intro: str = ""
    lang: str = "en"

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def first(self, type_: str) -> Field | None:
        return next((f for f in self.fields if f.type == type_), None)

    @property
    def file_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type == "file")


def form_from_config(config: Any) -> Form:
    """A Form from a config object with slug, title, intro and fields (name, label, type,
    required). Raises FormConfigError for a form that could not work."""
    slug = str(getattr(config, "slug", "") or "")
    if not SLUG.match(slug):
        raise FormConfigError(f"form slug {slug!r} must be lowercase letters, digits and '-' (at most 63)")
    title = str(getattr(config, "title", "") or "").strip()
    if not title:
        raise FormConfigError(f"form {slug!r} needs a title")
    fields = []
    seen = set()
    for raw in getattr(config, "fields", None) or ():
        field = Field(
            name=str(raw.name),
            label=str(raw.label).strip(),
            type=str(raw.type),
            required=bool(raw.required),
        )
        if not FIELD_NAME.match(field.name) or field.name in RESERVED:
            raise FormConfigError(
                f"form {slug!r}: field name {field.name!r} must be lowercase letters, digits and '_' "
                f"and not one of {', '.join(sorted(RESERVED))}"
            )
        if field.name in seen:
            raise FormConfigError(f"form {slug!r}: field {field.name!r} appears twice")
        if field.type not in FIELD_TYPES:
            raise FormConfigError(f"form {slug!r}: field {field.name!r} has unknown type {field.type!r}")
        if not field.label:
            raise FormConfigError(f"form {slug!r}: field {field.name!r} needs a label")
        seen.add(field.name)
        fields.append(field)
    form = Form(
        slug=slug,
        title=title,
        fields=tuple(fields),
        intro=str(getattr(config, "intro", "") or ""),
        lang=str(getattr(config, "lang", None) or "en"),
    )
    # Every submission must name someone the hub can answer.
    if form.first("email") is None and form.first("phone") is None:
        raise FormConfigError(f"form {slug!r} needs an email or a phone field: the hub must know whom to answer")
    return form


def forms_from_config(configs: Iterable[Any]) -> dict[str, Form]:
    forms: dict[str, Form] = {}
    for config in configs:
        form = form_from_config(config)
        if form.slug in forms:
            raise FormConfigError(f"form slug {form.slug!r} is configured twice")
        forms[form.slug] = form
    return forms

"""The names hub.conversations offers other capabilities all resolve, to the module that holds them."""

from __future__ import annotations

import importlib

import pytest

import hub.conversations as conversations


def test_every_public_name_resolves_and_all_lists_them():
    assert sorted(conversations.__all__) == sorted(conversations._PUBLIC)
    for name, module in conversations._PUBLIC.items():
        assert getattr(conversations, name) is getattr(importlib.import_module(module), name)


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import():
    with pytest.raises(AttributeError):
        conversations.no_such_thing  # noqa: B018
    from hub.conversations import macros, mentions

    assert macros.__name__ == "hub.conversations.macros" and mentions.__name__ == "hub.conversations.mentions"

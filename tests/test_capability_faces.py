"""Capabilities use each other through the names their package shows (hub/<capability>/__init__.py),
and `lint-imports` holds every capability to that (pyproject.toml). These tests keep the rule whole:
a new package under hub/ is either covered by a contract or named as a shared part, and every
public name leads somewhere."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Shared by every capability (the store, the contract, settings, background-work plumbing, the web
# app's kit) or putting them together (the web app and inbox shell, the command line, the demo).
SHARED = {"store", "contract", "config", "runtime", "web", "cli", "demo"}


def _packages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "hub").glob("*/__init__.py"))


def _protected() -> set[str]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return {expr.removeprefix("hub.").removesuffix(".*") for c in contracts if c["type"] == "protected"
            for expr in c["protected_modules"] if expr.endswith(".*")}


def test_every_package_of_the_hub_is_a_protected_capability_or_a_shared_part():
    uncovered = [name for name in _packages() if name not in SHARED and name not in _protected()]
    assert uncovered == [], ("add a `protected` contract for each (pyproject.toml, like hub.scm's) "
                             f"and give it a public face: {uncovered}")


@pytest.mark.parametrize("name", [n for n in _packages() if n not in SHARED])
def test_a_capabilitys_public_names_lead_to_what_they_name(name):
    package = importlib.import_module(f"hub.{name}")
    public = getattr(package, "_PUBLIC", {})
    submodules = {p.stem for p in (ROOT / "hub" / name).iterdir() if p.suffix == ".py" or p.is_dir()}
    # Importing a submodule sets an attribute of that name on the package, which would hide a
    # public name of the same spelling.
    assert not set(public) & submodules
    assert sorted(public) == sorted(getattr(package, "__all__", []))
    for attr, module in public.items():
        assert getattr(package, attr) is getattr(importlib.import_module(module), attr)
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018

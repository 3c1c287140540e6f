"""The core depends on the channel contract, never on a channel: of hub/, only the registry
(hub/gateway/registry.py) imports a channel module; everything else reaches channels through it."""

from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parents[2] / "hub"
THE_REGISTRY = HUB / "gateway" / "registry.py"


def channel_imports(path: Path) -> list[str]:
    """Every import of `channels` or a module under it in one file, as "line: module"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name == "channels" or name.startswith("channels.")]
    return found


def test_only_the_registry_imports_channels():
    offenders = {
        str(path.relative_to(HUB.parent)): imports
        for path in sorted(HUB.rglob("*.py"))
        if path != THE_REGISTRY and (imports := channel_imports(path))
    }
    assert offenders == {}, f"hub/ modules importing channels outside the registry: {offenders}"


def test_the_walk_finds_what_it_looks_for(tmp_path):
    # The check above would pass vacuously if it missed imports; it must see every form of one.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import channels\nimport channels.voice as v\nfrom channels.base import Channel\n"
        "def f():\n    from channels.webform import token\nfrom hub.contract import errors\nfrom . import channels\n"
    )
    assert channel_imports(sample) == ["1: channels", "2: channels.voice", "3: channels.base", "5: channels.webform"]
    assert channel_imports(THE_REGISTRY)  # the registry does import them

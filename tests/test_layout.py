"""The tests' own layout: shared helpers live in tests/support/ and shared fixtures in conftest.py
files, never in a test module. So no module under tests/ imports from a `test_*` module: pytest
collects each test module on its own, and one importing another couples unrelated suites (and
drags the other's fixtures and module-level setup along)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# A module named in a string, as importlib.import_module or the parser pool's `preload` take it.
_DOTTED = re.compile(r"tests(\.\w+)+")


def _names_test_module(name: str) -> bool:
    return any(part.startswith("test_") for part in name.split("."))


def imported_test_modules(path: Path, root: Path = TESTS) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in `path`, at any depth and relative ones resolved, and of
    every string naming a tests.* module, that refers to a test_* module; `root` is the tests/ directory."""
    package = ".".join(path.relative_to(root.parent).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(filter(None, [".".join(parts), base]))
            # `from tests.scm import test_routing` imports the module itself: the names count too.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.fullmatch(node.value):
            names = [node.value]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("tests.") and _names_test_module(name)]
    return found


def test_no_module_under_tests_imports_a_test_module():
    this = Path(__file__).resolve()  # its examples name test modules on purpose
    offenders = [f"{path.relative_to(TESTS.parent)}:{line}: {name}"
                 for path in sorted(TESTS.rglob("*.py")) if path != this for line, name in imported_test_modules(path)]
    assert offenders == [], "move what they share into tests/support/ (fixtures into a conftest.py):\n" + "\n".join(offenders)


def test_the_check_sees_every_way_of_naming_a_test_module(tmp_path):
    root = tmp_path / "tests"
    (root / "scm").mkdir(parents=True)
    module = root / "scm" / "test_x.py"
    module.write_text(
        "import tests.scm.test_routing\n"
        "from tests.scm.test_routing import policy\n"
        "from tests.scm import test_routing\n"
        "from . import test_escalation\n"
        "from .test_escalation import start_hub\n"
        "from ..channels.email.test_email_send import customer_mx\n"
        "def f():\n"
        "    from tests.ingest.test_parser_pool import spin\n"
        "POOL = ['tests.ingest.test_parser_pool']\n"
        # None of these is a test module.
        "import pytest\nfrom aiohttp.test_utils import TestClient\nfrom tests.support.email import mail\nfrom . import conftest\n"
        "from tests.support import scm\n"
        "TEXT = 'tests are run by test_runner'\n"
    )
    assert imported_test_modules(module, root) == [
        (1, "tests.scm.test_routing"),
        (2, "tests.scm.test_routing"), (2, "tests.scm.test_routing.policy"),
        (3, "tests.scm.test_routing"),
        (4, "tests.scm.test_escalation"),
        (5, "tests.scm.test_escalation"), (5, "tests.scm.test_escalation.start_hub"),
        (6, "tests.channels.email.test_email_send"), (6, "tests.channels.email.test_email_send.customer_mx"),
        (8, "tests.ingest.test_parser_pool"), (8, "tests.ingest.test_parser_pool.spin"),
        (9, "tests.ingest.test_parser_pool"),
    ]

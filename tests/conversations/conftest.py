"""Fixtures of the conversation tests: the demo SCM database (`scm_url`) and the SCM services over it (`services`),
from tests/support/scm.py; Ana, an agent (`agent`), from tests/support/hub.py."""

from __future__ import annotations

import pytest

from tests.support.hub import add_agent
from tests.support.scm import demo_scm_url, scm_services


@pytest.fixture
def scm_url(tmp_path) -> str:
    return demo_scm_url(tmp_path)


@pytest.fixture
async def services(scm_url):
    async with scm_services(scm_url) as svc:
        yield svc


@pytest.fixture
def agent(engine):
    """Ana, an agent, as the inbox's store functions see who acts."""
    return add_agent(engine, "Ana")

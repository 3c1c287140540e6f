"""The SCM tests' back end: the real `sql` adapter over a freshly seeded demo SCM database."""

from __future__ import annotations

import pytest

from adapters.config import SqlSettings
from adapters.demo_scm import seed_demo_scm
from adapters.sql import SqlBackend
from hub.scm.backend import ScmServices


@pytest.fixture
def scm_url(tmp_path) -> str:
    return seed_demo_scm(tmp_path / "scm")


@pytest.fixture
async def services(scm_url):
    svc = ScmServices(SqlBackend(SqlSettings(), url=scm_url))
    await svc.refresh_catalogue(force=True)
    yield svc
    await svc.close()

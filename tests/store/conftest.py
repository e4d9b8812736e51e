"""The ``backend`` fixture: every conformance test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.store.backend import Backend, Kind, open_backend


@pytest.fixture(params=["sqlite", "postgres"])
def backend_target(request: pytest.FixtureRequest) -> tuple[Kind, str]:
    kind: Kind = request.param
    # Only the PostgreSQL runs need (and so start) the session's server.
    return kind, request.getfixturevalue("postgres_url") if kind == "postgres" else ""


@pytest.fixture
async def backend(backend_target: tuple[Kind, str], tmp_path: Path) -> AsyncIterator[Backend]:
    kind, url = backend_target
    async with open_backend(kind, tmp_path=tmp_path, postgres_url=url) as opened:
        yield opened

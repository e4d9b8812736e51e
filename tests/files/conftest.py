"""File tests run against a real server on each blob backend: a directory and S3.

The S3 runs also keep their metadata in PostgreSQL, as a cluster does, so
the whole files suite covers both FileStore implementations too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.blobs.conftest import fresh_bucket
from tests.files.scene import blob_keys


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def files_overrides() -> dict[str, object]:
    """Override in a module for [files] settings."""
    return {}


@pytest.fixture
def server_overrides(
    request: pytest.FixtureRequest, backend: str, files_overrides: dict[str, object]
) -> dict[str, object]:
    overrides = dict(files_overrides)
    if backend == "s3":
        base: str = request.getfixturevalue("s3_base_url")
        overrides["backends.s3_url"] = base + fresh_bucket()
        overrides["backends.database_url"] = request.getfixturevalue("postgres_url")
    return overrides


@pytest.fixture
def stored_keys(tmp_path: Path, server_overrides: dict[str, object]) -> Callable[[], list[str]]:
    """The blob keys the test's server holds now, less the shipped default avatars."""
    return lambda: [
        key
        for key in blob_keys(tmp_path / "data", server_overrides)
        if not key.startswith("u/default-avatar-")
    ]

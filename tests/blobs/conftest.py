"""One blob store per backend: a directory, and a fresh bucket on a real S3 server."""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path

import pytest

from sandcat.blobs import BlobStore, LocalBlobStore
from sandcat.blobs.s3 import S3BlobStore, parse_s3_url

_buckets = itertools.count(1)


def fresh_bucket() -> str:
    return f"t{next(_buckets)}-{secrets.token_hex(4)}"


@pytest.fixture(params=["local", "s3"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        local = LocalBlobStore(tmp_path / "blobs")
        await local.open_store()
        return local
    base: str = request.getfixturevalue("s3_base_url")
    s3 = S3BlobStore(parse_s3_url(base + fresh_bucket()))
    await s3.open_store()
    return s3

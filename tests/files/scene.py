"""HTTP helpers for file tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from sandcat.blobs.s3 import parse_s3_url
from tests.scene import Account, Api


async def upload(
    api: Api,
    who: Account,
    data: bytes,
    content_type: str | None,
    *,
    kind: str = "image",
    name: str | None = None,
) -> httpx.Response:
    params = {"kind": kind, **({"name": name} if name else {})}
    headers = dict(api.auth(who))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.http.post("/api/v1/files", params=params, content=data, headers=headers)


async def uploaded(
    api: Api, who: Account, data: bytes, content_type: str, **kw: Any
) -> dict[str, Any]:
    reply = await upload(api, who, data, content_type, **kw)
    assert reply.status_code == 201, reply.text
    file: dict[str, Any] = reply.json()["file"]
    return file


async def content(
    api: Api, who: Account | None, file_id: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    merged = {**(api.auth(who) if who else {}), **(headers or {})}
    return await api.http.get(f"/api/v1/files/{file_id}/content", headers=merged)


def blob_keys(data_dir: Path, overrides: Mapping[str, object]) -> list[str]:
    """Every blob key the server's store holds (either backend), read behind its back."""
    s3_url = overrides.get("backends.s3_url")
    if not s3_url:
        objects = data_dir / "blobs" / "objects"
        return sorted(str(p.relative_to(objects)) for p in objects.rglob("*") if p.is_file())
    import boto3

    location = parse_s3_url(str(s3_url))
    client = boto3.client(
        "s3",
        endpoint_url=location.endpoint,
        aws_access_key_id=location.access_key,
        aws_secret_access_key=location.secret_key,
        region_name=location.region,
    )
    listing = client.list_objects_v2(Bucket=location.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))

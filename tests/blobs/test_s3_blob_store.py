"""What only the S3 backend does: SigV4 credentials, presigned URLs, the URL form."""

from __future__ import annotations

import httpx
import pytest

from sandcat.blobs.s3 import S3BlobStore, parse_s3_url
from sandcat.errors import ConfigError, StoreUnavailable
from tests.blobs.conftest import fresh_bucket


@pytest.fixture
async def s3(s3_base_url: str) -> S3BlobStore:
    store = S3BlobStore(parse_s3_url(s3_base_url + fresh_bucket()))
    await store.open_store()
    return store


async def test_wrong_secret_is_refused_by_sigv4(s3_base_url: str) -> None:
    url = s3_base_url.replace(":sandcat-test-secret@", ":wrong-secret@") + fresh_bucket()
    store = S3BlobStore(parse_s3_url(url))
    with pytest.raises(StoreUnavailable):
        await store.open_store()


async def test_presigned_get_serves_bytes_and_refuses_tampering(s3: S3BlobStore) -> None:
    await s3.put("u/p", b"presigned bytes", content_type="text/plain")
    url = s3.presign_get(
        "u/p", expires_s=60, content_type="text/plain", disposition='attachment; filename="p.txt"'
    )
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.get(url)
        assert reply.status_code == 200
        assert reply.content == b"presigned bytes"
        tampered = url.replace("u/p", "u/q")
        assert (await http.get(tampered)).status_code == 403


async def test_presigned_put_accepts_exactly_the_signed_size(s3: S3BlobStore) -> None:
    url = s3.presign_put("u/direct", expires_s=60, content_type="image/png", size=5)
    async with httpx.AsyncClient(timeout=10) as http:
        wrong = await http.put(url, content=b"123456", headers={"Content-Type": "image/png"})
        assert wrong.status_code == 403
        assert await s3.size("u/direct") is None
        right = await http.put(url, content=b"12345", headers={"Content-Type": "image/png"})
        assert right.status_code == 200
    assert await s3.size("u/direct") == 5


@pytest.mark.parametrize(
    "url",
    [
        "http://k:s@h/b",
        "s3://h:9000/b",
        "s3://k:s@h:9000/",
        "s3://k:s@h:9000/b/c",
        "s3://k:s@h:port/b",
    ],
)
def test_bad_s3_urls_are_config_errors_without_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_s3_url(url)
    assert ":s@" not in str(caught.value)


def test_s3_url_forms() -> None:
    plain = parse_s3_url("s3://AK:S%2Fk@minio:9000/files")
    assert (plain.endpoint, plain.access_key, plain.secret_key, plain.bucket) == (
        "http://minio:9000",
        "AK",
        "S/k",
        "files",
    )
    assert "S/k" not in repr(plain)
    tls = parse_s3_url("s3://AK:SK@[::1]/b?tls=1&region=eu-west-1")
    assert (tls.endpoint, tls.region) == ("https://[::1]", "eu-west-1")

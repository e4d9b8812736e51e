"""`HttpApi` beyond the embedded defaults: direct uploads to S3, GitHub login,
and what it does with replies a server should never send."""

from __future__ import annotations

import httpx
import pytest

from sandcat.client import HttpApi, HttpError
from tests.blobs.conftest import fresh_bucket
from tests.client.cast import Cast
from tests.files.media import png


@pytest.fixture
def server_overrides(s3_base_url: str) -> dict[str, object]:
    return {
        "backends.s3_url": s3_base_url + fresh_bucket(),
        "oauth.github_client_id": "client-1",
        "oauth.github_client_secret": "secret-1",
        "oauth.github_redirect_url": "http://127.0.0.1/api/v1/auth/oauth/github/callback",
    }


async def test_a_direct_upload_to_s3_and_its_links(cast: Cast) -> None:
    api = cast.api
    ann = await cast.person("ann")
    data = png(90, 60)
    ticket = await api.begin_direct_upload(
        ann.token, content_type="image/png", size=len(data), kind="image", name="d.png"
    )
    assert (ticket.file.id, ticket.file.name) != ("", "")
    async with httpx.AsyncClient(timeout=10) as storage:
        put = await storage.put(
            ticket.upload_url, content=data, headers={"Content-Type": "image/png"}
        )
        assert put.status_code == 200
    done = await api.complete_direct_upload(ann.token, ticket.file.id)
    assert (done.id, done.width, done.height, done.thumbnail) == (ticket.file.id, 90, 60, True)
    assert await api.download(ann.token, done.id) == data
    links = await api.link_file(ann.token, done.id)
    assert links.direct_url is not None
    assert await api.download_link(links.url) == data


async def test_the_github_login_url(cast: Cast) -> None:
    url = await cast.api.github_login_url(device="laptop", platform="web")
    assert "client_id=client-1" in url
    assert "state=" in url


def _answering(status: int, content: bytes, content_type: str = "application/json") -> HttpApi:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"Content-Type": content_type})

    return HttpApi("http://sandcat.invalid", transport=httpx.MockTransport(reply))


async def test_an_error_with_a_json_error_body_keeps_its_details() -> None:
    body = (
        b'{"error": {"code": "rate_limited", "message": "slow",'
        b' "retry_after_ms": 1500, "field": "x"}}'
    )
    async with _answering(429, body) as api:
        with pytest.raises(HttpError) as limited:
            await api.me("t")
    assert (limited.value.code, limited.value.retry_after_ms, limited.value.field) == (
        "rate_limited",
        1500,
        "x",
    )
    assert str(limited.value) == "HTTP 429 rate_limited: slow"


@pytest.mark.parametrize(
    ("status", "content"),
    [
        (502, b"<html>bad gateway</html>"),
        (500, b'{"error": "flat"}'),
        (200, b"[1, 2]"),
        (200, b"x"),
    ],
)
async def test_a_reply_that_is_not_the_api_s_json_is_an_internal_error(
    status: int, content: bytes
) -> None:
    async with _answering(status, content) as api:
        with pytest.raises(HttpError) as broken:
            await api.me("t")
    assert (broken.value.status, broken.value.code) == (status, "internal")


async def test_a_multipart_upload_takes_bytes() -> None:
    async def chunks() -> object:
        yield b"x"

    async with _answering(201, b"{}") as api:
        with pytest.raises(TypeError, match="bytes"):
            await api.upload_file("t", chunks(), content_type="image/png", multipart=True)  # type: ignore[arg-type]

"""The web client: its built static files (``sandcat/web/static``) at ``/``.

The files are the output of ``npm run build`` in ``web/`` and ship inside the
Python package, so serving them needs no Node. Every answer carries strict
headers: a Content-Security-Policy without inline scripts or styles whose
``connect-src`` admits this origin and the gateway's (the ``ws_url`` that
login hands out, usually another port), ``nosniff``, no framing, no referrer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from quart import Blueprint, Response, request

from sandcat.errors import ConfigError

#: Where ``npm run build`` writes the client (inside the package).
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def gateway_origin(ws_url: str) -> str:
    """The origin (``ws://host:port``) of the gateway URL, for ``connect-src``."""
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError("server.public_ws_url", ws_url, "must be an absolute ws:// or wss:// URL")
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(ws_url: str) -> dict[str, str]:
    """The headers of every web client answer."""
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            # Images, thumbnails and voice notes are fetched with the bearer and shown as blobs.
            "img-src 'self' blob:",
            "media-src 'self' blob:",
            f"connect-src 'self' {gateway_origin(ws_url)}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
    }


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file of the built client, read once (a fixed set: no path lookups)."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        content_type = _TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = Asset(body, content_type, etag)
    return assets


def webclient_blueprint(ws_url: str, assets: dict[str, Asset] | None = None) -> Blueprint:
    """``GET /`` (the page) and ``GET /static/<name>`` (its scripts and styles)."""
    files = load_assets() if assets is None else assets
    headers = security_headers(ws_url)
    blueprint = Blueprint("webclient", __name__)

    def answer(name: str) -> Response:
        asset = files.get(name)
        if asset is None:
            return Response(b"not found\n", status=404, content_type="text/plain", headers=headers)
        if asset.etag in request.headers.get("If-None-Match", ""):
            return Response(b"", status=304, headers={**headers, "ETag": asset.etag})
        return Response(
            asset.body,
            status=200,
            content_type=asset.content_type,
            headers={**headers, "ETag": asset.etag, "Cache-Control": "no-cache"},
        )

    @blueprint.get("/")
    async def page() -> Response:
        return answer("index.html")

    @blueprint.get("/static/<name>")
    async def static_file(name: str) -> Response:
        return answer(name)

    return blueprint

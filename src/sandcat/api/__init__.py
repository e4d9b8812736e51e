"""The HTTP API: a quart-trio app over the domain use cases, served by hypercorn."""

from sandcat.api.app import create_app, create_probe_app
from sandcat.api.bearer import SessionCloser
from sandcat.api.server import serve_http

__all__ = ["SessionCloser", "create_app", "create_probe_app", "serve_http"]

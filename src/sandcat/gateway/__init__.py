"""The WebSocket gateway: listener, per-connection tasks, and the connection hub."""

from sandcat.gateway.hub import Hub
from sandcat.gateway.listener import serve_gateway
from sandcat.gateway.operations import Operations

__all__ = ["Hub", "Operations", "serve_gateway"]

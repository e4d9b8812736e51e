"""Signals tests run against a real server with short timers (gateway ``connect`` fixture)."""

from __future__ import annotations

from tests.gateway.conftest import connect

__all__ = ["connect"]

"""Checks on user-supplied text shared by the use cases."""

from __future__ import annotations

import unicodedata

from sandcat.errors import BadRequest


def bounded(value: str, *, field: str, low: int, high: int, strip: bool = True) -> str:
    """``value`` (stripped) if its length is in ``[low, high]`` and it has no control
    characters; ``BadRequest`` naming ``field`` otherwise."""
    text = value.strip() if strip else value
    if not low <= len(text) <= high:
        raise BadRequest(f"{field}: must be {low}-{high} characters", field=field)
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise BadRequest(f"{field}: must not contain control characters", field=field)
    return text

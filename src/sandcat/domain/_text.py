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


#: Characters that reorder or hide text: bidi embeddings, overrides, isolates and
#: marks (a name that shows "alice" but is not), and zero-width characters (two
#: names that look the same). U+200D (zero-width joiner) is allowed only inside
#: an emoji sequence (after a symbol, modifier or variation selector, before a
#: symbol): families and flags are built with it.
_INVISIBLE = frozenset(
    "\u061c\u180e\u200b\u200c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
_ZWJ = "\u200d"
_EMOJI_BEFORE = frozenset({"So", "Sk", "Mn"})


def display_text(value: str, *, field: str, low: int, high: int) -> str:
    """``bounded`` text that is shown as someone's name: also free of bidi controls
    and zero-width characters; ``BadRequest`` naming ``field`` otherwise."""
    text = bounded(value, field=field, low=low, high=high)
    for index, char in enumerate(text):
        if char in _INVISIBLE or (char == _ZWJ and not _joins_emoji(text, index)):
            raise BadRequest(
                f"{field}: must not contain invisible or direction-changing characters "
                f"(U+{ord(char):04X})",
                field=field,
            )
    return text


def _joins_emoji(text: str, index: int) -> bool:
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return (
        bool(before)
        and bool(after)
        and unicodedata.category(before) in _EMOJI_BEFORE
        and unicodedata.category(after) == "So"
    )

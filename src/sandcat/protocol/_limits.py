"""Every bound the protocol core enforces, each with the reason it exists.

Two kinds of bound live here. *Contract* bounds are fixed by the v1 wire
contract (``protocol/SPEC.md``): clients rely on them, so they are class
constants that no deployment can change. *Tunable* bounds are dataclass fields
whose defaults are the contract values; a deployment may change them (the
server announces ``max_frame_bytes`` in the HELLO reply so clients can follow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what a peer may send.

    Raises:
        ValueError: if a tunable bound is not a positive int.
    """

    # -- contract bounds (fixed by SPEC.md; not constructor arguments) ------

    # rid is a uint32 on the wire so a client can keep it in a fixed-width
    # counter; 0 is reserved for server pushes.
    max_rid: ClassVar[int] = 2**32
    # seq, after, since, reply_to and times must survive a round trip through
    # a JavaScript number (an IEEE double is exact up to 2**53).
    max_seq: ClassVar[int] = 2**53
    # Content kinds fit a signed 32-bit int in every client language.
    max_kind: ClassVar[int] = 2**31
    # Ids are 1-64 chars of [A-Za-z0-9_-]: short enough for index keys, and
    # ":" stays free as the separator in cids.
    max_id_chars: ClassVar[int] = 64
    # cmid is the client's dedupe key, stored with every message; 64 bytes
    # holds a UUID or ULID in any textual form.
    max_cmid_bytes: ClassVar[int] = 64
    # 200 messages per PULL reply bounds its size (~3 MiB of text at most)
    # and how long one reply holds the connection's single writer.
    max_pull_limit: ClassVar[int] = 200
    # The PULL limit when the client sends none: one screenful or two.
    default_pull_limit: ClassVar[int] = 50
    # Mentions fan out notifications; 100 bounds the work one SEND can cause.
    max_mentions: ClassVar[int] = 100
    # A SYNC page: 1000 CONVs with short previews stay around 200 KiB.
    max_sync_limit: ClassVar[int] = 1000
    # Access tokens are JWTs; 4096 chars is far above any we issue and stops
    # a client from making the server hash megabytes.
    max_token_chars: ClassVar[int] = 4096
    # device, platform and client labels are logged and stored per session.
    max_label_chars: ClassVar[int] = 64
    # ERR.message is for humans and logs, never parsed.
    max_message_chars: ClassVar[int] = 1024
    # GOAWAY.reason is a short human-readable cause.
    max_reason_chars: ClassVar[int] = 256
    # Durations (retry_after_ms, reconnect_after_ms) fit a uint32 (~49 days).
    max_duration_ms: ClassVar[int] = 2**32

    # -- tunable bounds ------------------------------------------------------

    # One frame is decoded in one piece; 64 KiB bounds the memory a single
    # frame can take before any of it is validated (SPEC.md: close 1009).
    max_frame_bytes: int = 65536
    # msgpack nesting is recursion in every decoder; 16 levels (the envelope
    # array counts as level 1) is ample for message bodies and keeps the
    # validator's recursion shallow.
    max_depth: int = 16
    # A text message is a chat line, not a document: 16 KiB of UTF-8.
    max_text_bytes: int = 16384
    # Custom (>= 1000) and encrypted bodies are opaque to the server; the
    # same 16 KiB as text keeps every message row of a similar size.
    max_custom_body_bytes: int = 16384

    def __post_init__(self) -> None:
        for name in ("max_frame_bytes", "max_depth", "max_text_bytes", "max_custom_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive int, got {value!r}")


DEFAULT_LIMITS: Final = Limits()

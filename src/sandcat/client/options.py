"""Tunables of a session, with the defaults the SDK uses."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

__all__ = ["SessionOptions", "SessionStatistics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOptions:
    """How a session times out, reconnects and buffers.

    Attributes:
        request_timeout_s: deadline of every network round trip: connecting,
            one request and its reply, closing.
        operation_timeout_s: deadline of one call of the API, including
            waiting for a reconnect and resending (``send``, ``pull``, ...).
        reconnect_attempts: consecutive failed connection attempts before the
            session gives up and ends with `SessionClosed`.
        backoff_min_s, backoff_max_s: the reconnect delay doubles from the
            first to at most the second (with jitter).
        ping_interval_s: PING after this long to detect a dead server; None
            uses the ``heartbeat_ms`` the server announces.
        message_buffer: messages queued for the application; when it is full
            the SDK stops delivering (and pulls what it missed later).
        read_state_buffer: READ_STATE pushes queued; more are dropped (SYNC
            has every conversation's ``read_seq``).
        notice_buffer: NOTIFY pushes queued; more are dropped (``inbox()``
            pulls them; SYNC's ``inbox_max`` tells there are some).
        signal_buffer: TYPING, PRESENCE and CALL_EVENT pushes queued; more
            are dropped (``session.signals``).
        pull_limit: page size of backfill pulls (1-200).
        max_ahead: messages buffered per conversation behind a hole.
        client: the ``client`` label sent in HELLO.
        tls: the TLS settings for ``wss://`` and ``https://`` (e.g. an
            ``ssl.create_default_context(cafile=...)`` trusting a private CA);
            None: the system's trusted certificates.
    """

    request_timeout_s: float = 10.0
    operation_timeout_s: float = 30.0
    reconnect_attempts: int = 8
    backoff_min_s: float = 0.1
    backoff_max_s: float = 10.0
    ping_interval_s: float | None = None
    message_buffer: int = 256
    read_state_buffer: int = 64
    notice_buffer: int = 64
    signal_buffer: int = 256
    pull_limit: int = 200
    max_ahead: int = 400
    client: str | None = "sandcat-python"
    tls: ssl.SSLContext | None = None


@dataclass(slots=True)
class SessionStatistics:
    """Counters of a session, for tests and diagnostics (``Session.statistics()``)."""

    connects: int = 0
    auths: int = 0
    pushes: int = 0
    duplicates: int = 0
    pulls: int = 0
    resends: int = 0
    skipped: int = 0
    read_states_dropped: int = 0
    notices_dropped: int = 0
    signals_dropped: int = 0
    sends_pending: int = 0
    close_codes: list[int | None] = field(default_factory=list)

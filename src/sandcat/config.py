"""Configuration, parsed once at startup into frozen per-section dataclasses.

Precedence (README.md, "Configuration"): command-line flag > environment > TOML file >
default. Every value is checked here; a bad one raises ``ConfigError`` naming
the key path and the value, so the server fails at startup, never later.
Nothing reads ``os.environ`` after ``load_config`` returns.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandcat.errors import ConfigError
from sandcat.proxies import parse_networks


def _bounds(low: float, high: float | None = None) -> dict[str, Any]:
    return {"low": low, "high": high}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    ws_port: int = field(default=50000, metadata=_bounds(0, 65535))
    http_port: int = field(default=50001, metadata=_bounds(0, 65535))
    data_dir: str = "./sandcat-data"
    #: What login tells clients to connect to; derived from host and port if empty.
    public_ws_url: str = ""
    #: How long SIGTERM waits for in-flight sends to commit before closing.
    drain_timeout_s: float = field(default=10.0, metadata=_bounds(0, 600))
    #: How long ``serve`` keeps trying to start while a backend is unavailable
    #: (sandcat/startup.py); 0: exit at the first failure (a supervisor restarts it).
    startup_timeout_s: float = field(default=180.0, metadata=_bounds(0, 3600))
    #: glibc malloc arenas ``serve`` allows (sandcat/allocator.py); 0: glibc's default.
    malloc_arena_max: int = field(default=2, metadata=_bounds(0, 1024))
    #: Reverse proxies (addresses or CIDRs) whose X-Forwarded-For / Forwarded
    #: headers name the client (sandcat/proxies.py); empty: the socket's peer is.
    trusted_proxies: tuple[str, ...] = field(default=(), metadata={"check": parse_networks})
    #: TLS on both listeners (PEM certificate chain and its key); empty: plain TCP
    #: (TLS at a proxy in front instead).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: What this instance runs (docs/roles.md): ``all`` (everything, one process
    #: type), ``gateway`` (WebSocket and the send path), ``api`` (HTTP API) or
    #: ``worker`` (background tasks). Every role but ``all`` needs PostgreSQL.
    role: Literal["all", "gateway", "api", "worker"] = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendsConfig:
    #: ``sqlite:///path`` or ``postgresql://...``; empty means SQLite in data_dir.
    database_url: str = ""
    redis_url: str = ""
    kafka_bootstrap: str = ""
    mongo_url: str = ""
    s3_url: str = ""
    #: SQLite ``synchronous`` pragma: FULL makes every acked commit survive power loss.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    #: PostgreSQL connections per instance (each runs in its own worker thread).
    postgres_pool_size: int = field(default=10, metadata=_bounds(1, 1000))
    #: Deadline for one PostgreSQL transaction, also its server-side statement timeout.
    postgres_timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 600))
    #: Monthly message partitions kept ready beyond the current month.
    partitions_ahead_months: int = field(default=3, metadata=_bounds(1, 120))
    #: How often the janitor checks the partitions.
    janitor_interval_s: float = field(default=3600.0, metadata=_bounds(0.01, 86400))
    #: The Kafka topic of message events between instances, and its partitions when created.
    kafka_topic: str = "sandcat.events"
    kafka_partitions: int = field(default=12, metadata=_bounds(1, 10_000))
    #: Partitions of the delivery topic (``{kafka_topic}.deliver``): one slot per instance,
    #: at least the largest cluster size; 0 turns routing off (every instance reads every
    #: event). Routing needs Redis (the route table is the presence book).
    kafka_delivery_slots: int = field(default=16, metadata=_bounds(0, 10_000))
    #: Deadline for the broker to confirm a publish (and for metadata calls).
    kafka_timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 600))
    #: An instance whose outbox heartbeat is older than this has its rows taken over.
    outbox_lease_s: float = field(default=15.0, metadata=_bounds(0.3, 3600))
    #: A cluster singleton task (janitors, retention, partitions: docs/roles.md) runs on
    #: the one instance holding its lease in PostgreSQL; another takes it over once the
    #: holder has not renewed it for this long.
    task_lease_s: float = field(default=15.0, metadata=_bounds(0.3, 3600))
    #: Outbox rows published per round.
    outbox_batch: int = field(default=500, metadata=_bounds(1, 100_000))
    #: Recently delivered ``(cid, seq)`` the consumer remembers to drop repeats.
    consumer_dedupe: int = field(default=100_000, metadata=_bounds(0, 10_000_000))
    #: The Redis pub/sub channel of session ends and READ_STATE pushes between instances.
    redis_channel: str = "sandcat.fanout"
    #: Deadline for one Redis call (connect, publish, subscribe).
    redis_timeout_s: float = field(default=5.0, metadata=_bounds(0.1, 600))
    #: Prefix of every Redis key of shared state (rate limits, revocation log).
    redis_prefix: str = "sandcat:"
    #: How often each instance reads the Redis log of revoked sessions (and closes
    #: their sockets here): the bound on how long a revoked socket stays open.
    revocation_poll_s: float = field(default=0.25, metadata=_bounds(0.01, 60))
    #: Deadline for one MongoDB store call (all the commands it sends).
    mongo_timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 600))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    #: HMAC key for access tokens; empty means the keys in the database (made once).
    token_secret: str = ""
    access_ttl_s: int = field(default=900, metadata=_bounds(30, 900))
    #: How often each instance re-reads the token keys from the database: a
    #: rotated key signs two periods after ``sandcat rotate-token-key``.
    key_refresh_s: float = field(default=60.0, metadata=_bounds(0.05, 3600))
    #: How long a session found live is trusted without asking the database again
    #: (0: ask on every request). Revocations made on this instance apply at once;
    #: one made elsewhere applies within this long (and its sockets close sooner).
    session_cache_ms: int = field(default=1000, metadata=_bounds(0, 60_000))
    refresh_ttl_s: int = field(default=30 * 86400, metadata=_bounds(300, 365 * 86400))
    email_verification: bool = False
    #: argon2id cost: m >= 19 MiB, t >= 2, p = 1 (OWASP minimum).
    argon2_memory_kib: int = field(default=19456, metadata=_bounds(19456, 4 * 1024 * 1024))
    argon2_time_cost: int = field(default=2, metadata=_bounds(2, 20))
    #: Failed logins per account (or, for an unknown login, per normalised login)
    #: before it is locked: the last of them locks it for login_lockout_s, each
    #: further failure for twice as long, up to login_lockout_max_s (429).
    login_failures: int = field(default=5, metadata=_bounds(1, 100_000))
    login_lockout_s: float = field(default=30.0, metadata=_bounds(0.001, 86400))
    login_lockout_max_s: float = field(default=900.0, metadata=_bounds(0.001, 86400))
    #: Failed logins per client address within login_window_s before 429
    #: (successful ones do not count). Formerly ``login_attempts_per_ip``.
    login_failures_per_ip: int = field(default=100, metadata=_bounds(1, 1_000_000))
    #: Failures further apart than this (after any lock) start counting afresh.
    login_window_s: float = field(default=900.0, metadata=_bounds(1, 86400))
    #: Registrations (attempts past the field checks) per client address per
    #: registration_window_s before 429.
    registrations_per_ip: int = field(default=20, metadata=_bounds(1, 1_000_000))
    registration_window_s: float = field(default=3600.0, metadata=_bounds(1, 7 * 86400))
    #: Email verification codes: lifetime, and wrong guesses before a code is burnt.
    code_ttl_s: int = field(default=300, metadata=_bounds(30, 3600))
    code_max_attempts: int = field(default=5, metadata=_bounds(1, 100))
    #: Codes that may be requested per email / per address within code_window_s.
    codes_per_email: int = field(default=3, metadata=_bounds(1, 100_000))
    codes_per_ip: int = field(default=20, metadata=_bounds(1, 1_000_000))
    #: Codes one user may ask for to add an email or phone number, per code_window_s.
    contact_codes_per_user: int = field(default=5, metadata=_bounds(1, 1_000_000))
    #: PATCH /users/me per user per profile_window_s (429 beyond).
    profile_changes_per_user: int = field(default=60, metadata=_bounds(1, 1_000_000))
    profile_window_s: float = field(default=3600.0, metadata=_bounds(1, 7 * 86400))
    code_window_s: float = field(default=600.0, metadata=_bounds(1, 86400))


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    auth_timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 300))
    reauth_grace_s: float = field(default=60.0, metadata=_bounds(0, 3600))
    idle_timeout_s: float = field(default=60.0, metadata=_bounds(1, 3600))
    heartbeat_s: float = field(default=20.0, metadata=_bounds(0.1, 3600))
    max_frame_bytes: int = field(default=65536, metadata=_bounds(1024, 16 * 1024 * 1024))
    #: Frames queued for one client before it counts as a slow consumer (4005).
    outbound_queue_frames: int = field(default=1024, metadata=_bounds(1, 1_000_000))
    #: Bytes queued for one client: a push that does not fit closes it (4005), and
    #: the client's next request waits until a largest reply fits (the reader stops
    #: reading). At least twice max_reply_bytes.
    outbound_queue_bytes: int = field(default=4 * 1024 * 1024, metadata=_bounds(2048, 1 << 34))
    #: PULL and HISTORY replies stop adding messages at about this size (``more``
    #: true); one message is always returned, so a reply may exceed it by one.
    max_reply_bytes: int = field(default=1024 * 1024, metadata=_bounds(1024, 1 << 33))
    #: Deadline for one socket write; a peer slower than this is dropped.
    send_timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 600))
    #: Sockets the WebSocket listener holds, counted from accept; also capped by the
    #: descriptor limit less reserved_descriptors (kept for HTTP and storage).
    #: Beyond it an upgrade is answered 503.
    max_connections: int = field(default=100_000, metadata=_bounds(1, 10_000_000))
    reserved_descriptors: int = field(default=256, metadata=_bounds(16, 1_000_000))
    #: Sockets one address may hold before HELLO (bare TCP included); more are closed.
    max_unauthenticated_per_address: int = field(default=128, metadata=_bounds(1, 1_000_000))
    #: Connections (devices) of one user on one instance; the next HELLO gets ERR
    #: rate_limited and close 4004 (a reconnecting device replaces its old one).
    max_connections_per_user: int = field(default=32, metadata=_bounds(1, 100_000))
    #: Frames per second one connection may send, sustained; bursts up to rate_burst.
    rate_per_s: float = field(default=1000.0, metadata=_bounds(1, 1_000_000))
    rate_burst: int = field(default=2000, metadata=_bounds(1, 10_000_000))
    #: Maps and arrays per second one connection's frames may hold (decoding costs
    #: ~1 us each: a 64 KiB frame can hold 65,000); a connection over it is read
    #: more slowly, never refused. Bursts up to decode_objects_burst.
    decode_objects_per_s: float = field(default=16384.0, metadata=_bounds(1, 1e9))
    decode_objects_burst: int = field(default=32768, metadata=_bounds(1, 1 << 40))
    #: Frames refused in a row for rate before the client counts as abusive (4004).
    abuse_strikes: int = field(default=200, metadata=_bounds(1, 10_000_000))
    #: Frames per second one user may send over all connections and instances
    #: (0: no per-user budget); bursts up to user_burst; leased in user_lease blocks.
    user_rate_per_s: float = field(default=0.0, metadata=_bounds(0, 1_000_000))
    user_burst: int = field(default=4000, metadata=_bounds(1, 10_000_000))
    user_lease: int = field(default=50, metadata=_bounds(1, 100_000))

    def __post_init__(self) -> None:
        if self.outbound_queue_bytes < 2 * self.max_reply_bytes:
            raise ConfigError(
                "gateway.outbound_queue_bytes",
                self.outbound_queue_bytes,
                f"must be at least twice gateway.max_reply_bytes ({self.max_reply_bytes})",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig:
    #: SendRequests waiting for the sequencer; a full queue back-pressures readers.
    send_queue: int = field(default=4096, metadata=_bounds(1, 1_000_000))
    #: Most sends committed in one transaction (group commit).
    max_batch: int = field(default=512, metadata=_bounds(1, 100_000))
    #: How long the sequencer waits for more sends once it has one (0: take what is
    #: queued; batches still grow while the persister is busy committing).
    batch_window_ms: float = field(default=0.0, metadata=_bounds(0, 1000))
    #: Acks remembered for the in-memory resend fast path (G2).
    recent_acks: int = field(default=65536, metadata=_bounds(0, 10_000_000))
    #: ... each for at most this long after its last use (0: until pushed out);
    #: older resends are answered by the store's dedupe.
    recent_acks_ttl_s: float = field(default=300.0, metadata=_bounds(0, 86400))
    #: Deadline for one store call on the send path.
    store_timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 600))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatConfig:
    #: Who may open a direct conversation: only friends, or anyone not blocked.
    dm_policy: Literal["friends", "anyone"] = "friends"
    max_group_members: int = field(default=500, metadata=_bounds(2, 1_000_000))
    #: After a rejection or an unfriending, how long before the same user may ask again.
    friend_request_cooldown_s: int = field(default=86400, metadata=_bounds(0, 365 * 86400))
    #: Friend requests sent (each also lets its sender send a cancel notice) per
    #: sender and addressee, per sender, and per client address within
    #: friend_request_window_s before 429.
    friend_requests_per_pair: int = field(default=3, metadata=_bounds(1, 1_000_000))
    friend_requests_per_user: int = field(default=30, metadata=_bounds(1, 1_000_000))
    friend_requests_per_ip: int = field(default=100, metadata=_bounds(1, 1_000_000))
    friend_request_window_s: float = field(default=3600.0, metadata=_bounds(1, 7 * 86400))
    #: How long after sending a user may recall a message (group owners and admins: always).
    recall_window_s: int = field(default=120, metadata=_bounds(0, 365 * 86400))
    #: How long after sending a user may edit a text message.
    edit_window_s: int = field(default=900, metadata=_bounds(0, 365 * 86400))


@dataclass(frozen=True, slots=True, kw_only=True)
class MailConfig:
    #: SMTP relay; empty means no SMTP: mail is written to DATA_DIR/outbox instead.
    smtp_host: str = ""
    smtp_port: int = field(default=587, metadata=_bounds(1, 65535))
    #: "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (tests only).
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    #: Extra CA bundle for the relay's certificate (a private CA).
    smtp_ca_file: str = ""
    from_address: str = "Sandcat <noreply@localhost>"
    #: Directory with code.txt / code.html ($code, $minutes, $purpose); empty: built in.
    template_dir: str = ""
    timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 300))
    #: Mails waiting to be sent; a full queue answers 503.
    queue: int = field(default=1000, metadata=_bounds(1, 1_000_000))


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthConfig:
    #: GitHub login; off while github_client_id is empty.
    github_client_id: str = ""
    github_client_secret: str = ""
    #: The callback URL registered with GitHub: .../api/v1/auth/oauth/github/callback
    github_redirect_url: str = ""
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL
    github_api_url: str = "https://api.github.com"
    #: How long a started login may take to come back to the callback.
    state_ttl_s: int = field(default=600, metadata=_bounds(30, 3600))
    timeout_s: float = field(default=10.0, metadata=_bounds(0.1, 120))


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxConfig:
    #: Notices nobody acknowledged are deleted after this many days.
    retention_days: int = field(default=30, metadata=_bounds(1, 3650))
    #: How often the retention task runs.
    sweep_interval_s: float = field(default=3600.0, metadata=_bounds(1, 86400))
    #: With the inbox in MongoDB: how often notices left in the SQL outbox are swept.
    relay_interval_s: float = field(default=5.0, metadata=_bounds(0.01, 3600))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionConfig:
    #: Messages older than this many days are removed and each conversation's
    #: min_seq moves past them (0: keep every message for ever).
    messages_days: int = field(default=0, metadata=_bounds(0, 36500))
    #: PostgreSQL: drop retired month partitions, or detach them and keep them as
    #: archived_messages_YYYY_MM tables for the operator.
    archive: Literal["drop", "detach"] = "drop"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    #: Largest JSON request body; larger ones get 413 before they are read.
    max_body_bytes: int = field(default=1024 * 1024, metadata=_bounds(1024, 1 << 30))
    request_timeout_s: float = field(default=30.0, metadata=_bounds(0.1, 3600))
    #: Serve the web client (its static files) at ``/``; false leaves ``/`` a 404.
    web_client: bool = True
    #: How often each instance re-reads the cluster-wide gauges (registered users,
    #: active sessions) from the database: one query per interval, never per scrape.
    census_interval_s: float = field(default=30.0, metadata=_bounds(0.05, 86400))
    #: A user may take one data export (GET /users/me/export) per this many seconds.
    export_interval_s: float = field(default=600.0, metadata=_bounds(1, 7 * 86400))


_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesConfig:
    """Uploads, downloads and avatars (the bytes go to data_dir/blobs or to S3)."""

    #: Largest upload per kind; bigger ones get 413 before their body is read.
    max_image_bytes: int = field(default=20 * _MIB, metadata=_bounds(1024, 1 << 40))
    max_file_bytes: int = field(default=100 * _MIB, metadata=_bounds(1024, 1 << 40))
    max_voice_bytes: int = field(default=10 * _MIB, metadata=_bounds(1024, 1 << 40))
    max_video_bytes: int = field(default=100 * _MIB, metadata=_bounds(1024, 1 << 40))
    max_avatar_bytes: int = field(default=5 * _MIB, metadata=_bounds(1024, 1 << 40))
    #: Images with more pixels are refused before decoding (decompression bombs).
    max_image_pixels: int = field(default=50_000_000, metadata=_bounds(1, 1 << 34))
    #: Memory one image's decode may take (width x height x bytes per pixel, twice
    #: with alpha; JPEGs count at the scale they are decoded at); larger ones get 413.
    max_image_decode_bytes: int = field(default=96 * _MIB, metadata=_bounds(_MIB, 1 << 40))
    max_avatar_decode_bytes: int = field(default=64 * _MIB, metadata=_bounds(_MIB, 1 << 40))
    #: Image decodes running at once per instance (each takes up to the limit above).
    image_workers: int = field(default=2, metadata=_bounds(1, 64))
    #: Bytes of finished uploads one user may keep.
    quota_bytes: int = field(default=1024 * _MIB, metadata=_bounds(0, 1 << 50))
    #: Uploads never sent in a message are deleted this long after upload.
    orphan_ttl_s: float = field(default=86400.0, metadata=_bounds(1, 365 * 86400))
    #: How often the janitor looks for orphans.
    janitor_interval_s: float = field(default=300.0, metadata=_bounds(0.05, 86400))
    #: Lifetime of signed download links (and of S3 presigned URLs).
    signed_url_ttl_s: int = field(default=300, metadata=_bounds(1, 7 * 86400))
    #: An upload that sends nothing for this long is dropped.
    idle_timeout_s: float = field(default=30.0, metadata=_bounds(0.1, 3600))
    #: Deadline for sending one download.
    transfer_timeout_s: float = field(default=3600.0, metadata=_bounds(1, 86400))


@dataclass(frozen=True, slots=True, kw_only=True)
class CallsConfig:
    """1:1 call signalling and TURN credentials (SPEC.md §4.19, §13)."""

    #: An unanswered call ends as missed after this long.
    ring_timeout_s: float = field(default=45.0, metadata=_bounds(0.05, 600))
    #: A call whose device disconnected ends unless that device is back within this.
    disconnect_grace_s: float = field(default=10.0, metadata=_bounds(0, 600))
    #: The coturn ``static-auth-secret``; empty: GET /api/v1/calls/turn answers 404.
    turn_secret: str = ""
    #: Comma-separated ``turn:``/``turns:``/``stun:`` URIs handed out with credentials.
    turn_urls: str = ""
    #: Lifetime of TURN credentials.
    turn_ttl_s: int = field(default=86400, metadata=_bounds(60, 7 * 86400))


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """What the server logs on stderr (README.md, "Operating Sandcat")."""

    #: ``text`` (one human line each) or ``json`` (one JSON object a line).
    format: Literal["text", "json"] = "text"
    #: One INFO line per HTTP request on the ``sandcat.access`` logger.
    access: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalsConfig:
    """Typing indicators and presence (SPEC.md §4.16-4.18)."""

    #: Each connection may send one TYPING per conversation per interval.
    typing_interval_s: float = field(default=2.0, metadata=_bounds(0, 60))
    #: TYPING one user may send over all connections, conversations and instances
    #: per typing_window_s (stops that clear a start are free).
    typing_per_user: int = field(default=30, metadata=_bounds(1, 1_000_000))
    typing_window_s: float = field(default=10.0, metadata=_bounds(0.1, 3600))
    #: Presence changes are pushed in one PRESENCE per recipient at most this often.
    presence_batch_ms: int = field(default=250, metadata=_bounds(10, 10_000))
    #: How often an instance refreshes its devices in the presence book (they
    #: expire after three periods: a crashed instance's users go offline).
    presence_refresh_s: float = field(default=30.0, metadata=_bounds(0.05, 3600))


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    backends: BackendsConfig = field(default_factory=BackendsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def ws_url(self) -> str:
        if self.server.public_ws_url:
            return self.server.public_ws_url
        host = self.server.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self.server.tls_cert_file else "ws"
        return f"{scheme}://{host}:{self.server.ws_port}/ws"


#: Environment variables of the operations contract (README.md, "Configuration").
ENVIRONMENT: Mapping[str, str] = {
    "SANDCAT_DATA_DIR": "server.data_dir",
    "SANDCAT_HOST": "server.host",
    "SANDCAT_WS_PORT": "server.ws_port",
    "SANDCAT_HTTP_PORT": "server.http_port",
    "SANDCAT_ROLE": "server.role",
    "SANDCAT_TRUSTED_PROXIES": "server.trusted_proxies",
    "SANDCAT_DATABASE_URL": "backends.database_url",
    "SANDCAT_REDIS_URL": "backends.redis_url",
    "SANDCAT_KAFKA_BOOTSTRAP": "backends.kafka_bootstrap",
    "SANDCAT_MONGO_URL": "backends.mongo_url",
    "SANDCAT_S3_URL": "backends.s3_url",
    "SANDCAT_TOKEN_SECRET": "auth.token_secret",
    "SANDCAT_GITHUB_CLIENT_SECRET": "oauth.github_client_secret",
    "SANDCAT_SMTP_PASSWORD": "mail.smtp_password",
    "SANDCAT_TURN_SECRET": "calls.turn_secret",
    "SANDCAT_WEB_CLIENT": "http.web_client",
    "SANDCAT_LOG_FORMAT": "log.format",
    "SANDCAT_ACCESS_LOG": "log.access",
}


def load_config(
    *,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Build the configuration from defaults, a TOML file, the environment and flags.

    ``overrides`` maps dotted keys (``"server.ws_port"``) to values from flags.
    The file is ``file`` or, if that is None, ``$SANDCAT_CONFIG`` when set.
    Raises ``ConfigError`` for unknown keys, wrong types and out-of-range values.
    """
    env = {} if env is None else env
    layers: dict[str, dict[str, object]] = {}
    path = file if file is not None else env.get("SANDCAT_CONFIG")
    if path:
        _merge(layers, _read_file(path), source="file")
    _merge(
        layers,
        {key: env[name] for name, key in ENVIRONMENT.items() if name in env},
        source="env",
    )
    _merge(layers, dict(overrides or {}), source="flag")
    sections: dict[str, object] = {}
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        values = layers.pop(section.name, {})
        sections[section.name] = _build_section(section.name, cls, values)
    for unknown in layers:
        raise ConfigError(unknown, None, "unknown section")
    return Config(**sections)  # type: ignore[arg-type]


def _read_file(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("config", path, f"cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # tomllib decodes the bytes itself and lets a non-UTF-8 file's error escape.
        raise ConfigError("config", path, f"invalid TOML: {exc}") from exc
    flat: dict[str, object] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(section, table, "expected a table")
        for key, value in table.items():
            flat[f"{section}.{key}"] = value
    return flat


def _merge(layers: dict[str, dict[str, object]], flat: Mapping[str, object], source: str) -> None:
    for dotted, value in flat.items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(dotted, value, f"expected section.key ({source})")
        layers.setdefault(section, {})[key] = value


#: Keys that were renamed: the old name is still read (the new one wins if both are set).
RENAMED: Mapping[str, str] = {
    "auth.login_attempts_per_ip": "auth.login_failures_per_ip",
}


def _build_section(name: str, cls: type[Any], values: dict[str, object]) -> object:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, object] = {}
    for old, new in RENAMED.items():
        old_section, _, old_key = old.partition(".")
        if old_section == name and old_key in values:
            raw = values.pop(old_key)
            values.setdefault(new.partition(".")[2], raw)
    for key, raw in values.items():
        if key not in fields:
            raise ConfigError(f"{name}.{key}", raw, "unknown key")
        kwargs[key] = _coerce(f"{name}.{key}", raw, hints[key], fields[key].metadata)
    return cls(**kwargs)


def _coerce(key: str, raw: object, hint: object, metadata: Mapping[str, Any]) -> object:
    value: object
    if hint is bool:
        value = _to_bool(key, raw)
    elif hint is int or hint is float:
        value = _to_number(key, raw, float if hint is float else int)
        low, high = metadata.get("low"), metadata.get("high")
        # NaN compares false with everything, so it must be refused by name.
        if (
            math.isnan(value)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise ConfigError(key, raw, f"must be between {low} and {high}")
    elif typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            raise ConfigError(key, raw, f"must be one of {', '.join(map(str, choices))}")
        value = raw
    elif hint == tuple[str, ...]:
        value = _to_strings(key, raw)
        check = metadata.get("check")
        if check is not None:
            try:
                check(value)
            except ValueError as exc:
                raise ConfigError(key, raw, str(exc)) from exc
    elif hint is str or (isinstance(hint, types.UnionType) and str in typing.get_args(hint)):
        if not isinstance(raw, str):
            raise ConfigError(key, raw, "must be a string")
        value = raw
    else:  # pragma: no cover - every field type is handled above
        raise ConfigError(key, raw, f"unsupported type {hint}")
    return value


def _to_strings(key: str, raw: object) -> tuple[str, ...]:
    """A TOML array of strings, or one comma-separated string (the environment)."""
    if isinstance(raw, str):
        items: list[object] = [item for item in raw.split(",") if item.strip()]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise ConfigError(key, raw, "must be a list of strings or a comma-separated string")
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(key, raw, "must be a list of strings")
    return tuple(str(item).strip() for item in items)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _to_bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    raise ConfigError(key, raw, "must be a boolean")


def _to_number(key: str, raw: object, kind: type[int] | type[float]) -> int | float:
    if isinstance(raw, bool):
        raise ConfigError(key, raw, f"must be {'an integer' if kind is int else 'a number'}")
    if isinstance(raw, int | float) and not (kind is int and isinstance(raw, float)):
        return kind(raw)
    if isinstance(raw, str):
        try:
            return kind(raw)
        except ValueError:
            pass
    raise ConfigError(key, raw, f"must be {'an integer' if kind is int else 'a number'}")

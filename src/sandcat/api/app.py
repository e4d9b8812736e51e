"""The quart-trio application: routes wired to the use cases they serve."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from quart import Response
from quart_trio import QuartTrio

from sandcat.api.access import AccessLog, Observer
from sandcat.api.admin import admin_blueprint
from sandcat.api.auth import auth_blueprint
from sandcat.api.bearer import SessionCloser
from sandcat.api.calls import calls_blueprint
from sandcat.api.conversations import conversations_blueprint
from sandcat.api.errors import install_error_counter, install_error_handlers
from sandcat.api.export import export_blueprint
from sandcat.api.files import UPLOAD_ENDPOINTS, files_blueprint
from sandcat.api.friends import blocks_blueprint, friends_blueprint
from sandcat.api.groups import groups_blueprint
from sandcat.api.inbox import inbox_blueprint
from sandcat.api.messages import messages_blueprint
from sandcat.api.oauth import oauth_blueprint
from sandcat.api.openapi import openapi_document
from sandcat.api.payload import json_response
from sandcat.api.sessions import sessions_blueprint
from sandcat.api.upload_stream import StreamedUploads
from sandcat.api.users import users_blueprint
from sandcat.api.webclient import webclient_blueprint
from sandcat.clock import Clock, system_clock
from sandcat.config import Config
from sandcat.domain.accounts import Accounts
from sandcat.domain.admin import Admin
from sandcat.domain.codes import VerificationCodes
from sandcat.domain.contacts import Contacts
from sandcat.domain.conversations import Conversations
from sandcat.domain.direct_uploads import DirectUploads
from sandcat.domain.file_links import FileLinks
from sandcat.domain.files import Files
from sandcat.domain.groups import Groups
from sandcat.domain.inbox import Inbox
from sandcat.domain.oauth import GithubLogin
from sandcat.domain.profiles import Profiles
from sandcat.domain.turn import TurnRelay
from sandcat.metrics import CONTENT_TYPE, Counter, Registry
from sandcat.proxies import ForwardedClient, TrustedProxies
from sandcat.store.history import HistoryStore

if TYPE_CHECKING:
    # sandcat.export renders with the api's JSON helpers: a runtime import would be a cycle.
    from sandcat.export import Exports


def create_app(
    *,
    accounts: Accounts,
    contacts: Contacts,
    groups: Groups,
    conversations: Conversations,
    files: Files,
    links: FileLinks,
    direct: DirectUploads,
    profiles: Profiles,
    codes: VerificationCodes,
    inbox: Inbox,
    github: GithubLogin,
    sessions: SessionCloser,
    config: Config,
    ready: Callable[[], bool],
    metrics: Registry | None = None,
    errors: Counter | None = None,
    turn: TurnRelay | None = None,
    history: HistoryStore,
    clock: Clock = system_clock,
    observe_request: Observer | None = None,
    admin: Admin | None = None,
    exports: Exports,
) -> QuartTrio:
    """The HTTP API (protocol/SPEC.md §13) and ``GET /healthz`` (README.md).

    ``ready`` decides the health answer: 200 once the instance is ready, 503
    while it is starting or draining. ``GET /metrics`` renders ``metrics``
    (Prometheus text format); ``errors`` counts every error answer (by code);
    ``observe_request`` gets every request's route, method, status and duration.
    """
    registry = metrics or Registry()
    app = _bare_app(config, errors, observe_request)
    max_bytes = config.http.max_body_bytes
    app.register_blueprint(auth_blueprint(accounts, codes, sessions, config))
    app.register_blueprint(users_blueprint(accounts, profiles, sessions, max_body_bytes=max_bytes))
    app.register_blueprint(oauth_blueprint(github, config))
    app.register_blueprint(sessions_blueprint(accounts, sessions))
    app.register_blueprint(friends_blueprint(accounts, contacts, max_body_bytes=max_bytes))
    app.register_blueprint(blocks_blueprint(accounts, contacts))
    app.register_blueprint(inbox_blueprint(accounts, inbox, max_body_bytes=max_bytes))
    app.register_blueprint(groups_blueprint(accounts, groups, max_body_bytes=max_bytes))
    app.register_blueprint(
        conversations_blueprint(accounts, conversations, max_body_bytes=max_bytes)
    )
    app.register_blueprint(
        files_blueprint(accounts, files, links, direct, groups, max_body_bytes=max_bytes)
    )
    app.register_blueprint(
        calls_blueprint(accounts, turn or TurnRelay(config.calls, clock=system_clock))
    )
    app.register_blueprint(
        messages_blueprint(accounts, history, clock=clock, max_body_bytes=max_bytes)
    )
    if admin is not None:
        app.register_blueprint(admin_blueprint(accounts, admin, max_body_bytes=max_bytes))
    app.register_blueprint(
        export_blueprint(accounts, exports, timeout_s=config.files.transfer_timeout_s)
    )
    if config.http.web_client:
        app.register_blueprint(webclient_blueprint(config.ws_url))
    # Uploads stream their bodies with back-pressure (sandcat.api.upload_stream),
    # through Quart's documented middleware hook.
    app.asgi_app = StreamedUploads(app.asgi_app, app.url_map, UPLOAD_ENDPOINTS)  # type: ignore[method-assign]
    document = openapi_document()
    _add_probes(app, ready, registry)

    @app.get("/api/v1/openapi.json")
    async def openapi() -> Response:
        return json_response(document)

    return app


def create_probe_app(
    *,
    config: Config,
    ready: Callable[[], bool],
    metrics: Registry,
    errors: Counter | None = None,
    observe_request: Observer | None = None,
) -> QuartTrio:
    """``GET /healthz`` and ``GET /metrics`` alone: the HTTP port of the gateway and
    worker roles (docs/roles.md). Every other path is a 404 (an API route too)."""
    app = _bare_app(config, errors, observe_request)
    _add_probes(app, ready, metrics)
    return app


def _bare_app(
    config: Config, errors: Counter | None, observe_request: Observer | None
) -> QuartTrio:
    """The app every role's HTTP port starts from: body and time limits, error
    handlers (and their counter), the access log and the trusted-proxy rule."""
    app = QuartTrio("sandcat")
    app.config.update(
        # Bodies announced larger are refused before reading (read_body);
        # this catches chunked ones as they arrive.
        MAX_CONTENT_LENGTH=config.http.max_body_bytes,
        BODY_TIMEOUT=config.http.request_timeout_s,
        RESPONSE_TIMEOUT=config.http.request_timeout_s,
        PROPAGATE_EXCEPTIONS=False,
    )
    install_error_handlers(app)
    if errors is not None:
        install_error_counter(app, errors)
    # One access line per request, with the client address the proxy rule resolved.
    app.asgi_app = AccessLog(  # type: ignore[method-assign]
        app.asgi_app, app.url_map, enabled=config.log.access, observe=observe_request
    )
    # Behind trusted proxies the client is who they say (rate limits, sessions, logs).
    app.asgi_app = ForwardedClient(  # type: ignore[method-assign,assignment]
        app.asgi_app,  # type: ignore[arg-type]
        TrustedProxies(config.server.trusted_proxies),
    )
    return app


def _add_probes(app: QuartTrio, ready: Callable[[], bool], registry: Registry) -> None:
    """``/healthz``: 200 once ready, 503 while starting or draining; ``/metrics``."""

    @app.get("/healthz")
    async def healthz() -> Response:
        if ready():
            return json_response({"status": "ok"})
        return json_response({"status": "starting"}, 503)

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(registry.render(), status=200, content_type=CONTENT_TYPE)

"""The use cases, wired to their stores, and the blob store they keep files in.

``build_services`` is the part of the composition root (app.py) that tests
reuse to build the HTTP API without a running gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandcat.blobs import BlobStore, DirectBlobStore, LocalBlobStore
from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.domain.accounts import Accounts
from sandcat.domain.codes import Mailbox, VerificationCodes
from sandcat.domain.contacts import Contacts
from sandcat.domain.groups import Groups
from sandcat.domain.inbox import Inbox
from sandcat.domain.keyring import KeyRing
from sandcat.domain.notices import Notifier
from sandcat.domain.oauth import GithubLogin
from sandcat.domain.passwords import PasswordHasher
from sandcat.domain.profiles import Profiles
from sandcat.errors import BackendFailure, ignore_failure
from sandcat.mail import CodeTemplates
from sandcat.pipeline.delivery import Delivery
from sandcat.pipeline.outlet import Directory
from sandcat.store.backends import Stores
from sandcat.store.cache import Cache
from sandcat.store.messages import MessageStore
from sandcat.store.ratelimit import Limiters
from sandcat.texts import TextSender


async def open_blob_store(
    config: Config, *, on_failure: BackendFailure = ignore_failure
) -> tuple[BlobStore, DirectBlobStore | None]:
    """The configured blob store, ready: S3 if ``backends.s3_url`` is set, else a directory."""
    if config.backends.s3_url:
        from sandcat.blobs.s3 import S3BlobStore, parse_s3_url

        s3 = S3BlobStore(parse_s3_url(config.backends.s3_url), on_failure=on_failure)
        await s3.open_store()
        return s3, s3
    local = LocalBlobStore(config.data_path / "blobs")
    await local.open_store()
    return local, None


@dataclass(frozen=True, slots=True)
class Services:
    """The use cases, wired to their stores."""

    accounts: Accounts
    codes: VerificationCodes
    profiles: Profiles
    contacts: Contacts
    groups: Groups
    inbox: Inbox
    github: GithubLogin
    messages: MessageStore


def build_services(
    stores: Stores,
    config: Config,
    *,
    secret: KeyRing | bytes,
    clock: Clock,
    notifier: Notifier,
    mailbox: Mailbox,
    directory: Directory | None = None,
    notice_relay: Notifier | None = None,
    limiters: Limiters | None = None,
    cache: Cache | None = None,
    passwords: PasswordHasher | None = None,
    texts: TextSender | None = None,
) -> Services:
    """Every use case over the opened stores. ``notice_relay`` is told of notices
    stores write in their own transactions (when those land in an outbox first)."""
    codes = VerificationCodes(
        stores.accounts,
        config=config.auth,
        secret=secret,
        clock=clock,
        mailbox=mailbox,
        templates=CodeTemplates.load(config.mail.template_dir),
        limiters=limiters,
        texts=texts,
    )
    accounts = Accounts(
        stores.accounts,
        config=config.auth,
        secret=secret,
        clock=clock,
        codes=codes,
        limiters=limiters,
        sessions=cache,
        passwords=passwords,
    )
    return Services(
        accounts=accounts,
        codes=codes,
        profiles=Profiles(
            stores.accounts, clock=clock, codes=codes, config=config.auth, limiters=limiters
        ),
        contacts=Contacts(
            stores.contacts,
            clock=clock,
            # Notices written in a store's own transaction go through the relay
            # when they land in an outbox first (the inbox in MongoDB).
            notifier=notice_relay or notifier,
            config=config.chat,
            limiters=limiters,
        ),
        groups=Groups(
            stores.groups,
            config=config.chat,
            clock=clock,
            notifier=notice_relay or notifier,
            delivery=None if directory is None else Delivery(directory),
        ),
        inbox=Inbox(
            stores.inbox,
            devices=accounts,
            notifier=notifier,
            clock=clock,
            retention_days=config.inbox.retention_days,
        ),
        github=GithubLogin(stores.accounts, accounts, config=config.oauth, clock=clock),
        messages=stores.messages,
    )

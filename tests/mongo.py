"""A MongoDB wire-protocol server for the test session: briskdb, from PyPI.

No real MongoDB can be installed on the CI machines, so the
session starts briskdb's MongoDB-subset listener in a child process on a free
loopback port; real pymongo talks to it over a real socket. It is slow (tens
of writes per second): keep test data small. ``SANDCAT_TEST_MONGO_URL`` names
a real MongoDB instead. Each test uses a database of its own.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

#: Read once at import: some tests clear SANDCAT_* from the environment.
_EXTERNAL = os.environ.get("SANDCAT_TEST_MONGO_URL", "")
_STARTUP_TIMEOUT_S = 30
_names = itertools.count(1)

# Runs in the child: open a document database, listen, print the address, and
# serve until stdin closes (the parent exiting, even by a crash, stops it).
_SERVER = """
import sys, briskdb
db = briskdb.connect(sys.argv[1], shards=2, documents=True)
server = db.serve(http="127.0.0.1:0", admin=None, mongo="127.0.0.1:0")
print(server.mongo_address, flush=True)
sys.stdin.read()
server.close()
db.close()
"""


@contextmanager
def session_mongo() -> Iterator[str]:
    """A ``mongodb://host:port`` base URL (no database) for the session."""
    if _EXTERNAL:
        yield _EXTERNAL.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="sandcat-mongo-") as root:
        child = subprocess.Popen(
            [sys.executable, "-c", _SERVER, root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            address = child.stdout.readline().strip()
            if not address:
                raise RuntimeError(f"briskdb did not start (exit {child.wait(_STARTUP_TIMEOUT_S)})")
            yield f"mongodb://{address}"
        finally:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.close()
            child.stdout.close()
            try:
                child.wait(_STARTUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def database_url(base: str) -> str:
    """A URL naming a database no other test uses."""
    base, _, query = base.partition("?")
    name = f"sandcat_test_{os.getpid()}_{next(_names)}"
    return f"{base.rstrip('/')}/{name}" + (f"?{query}" if query else "")

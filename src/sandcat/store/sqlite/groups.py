"""Group checks inside SQLite's message append (the group store itself is
``store.sql.groups.backend.SqlGroupStore``, one for both engines)."""

from __future__ import annotations

import sqlite3

from sandcat.store.groups import Role
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups import queries
from sandcat.store.sqlite.dialect import DIALECT


def send_refusal(conn: sqlite3.Connection, sender: str, cid: str, now_ms: int) -> str | None:
    """Why ``sender`` may not post in ``cid`` now (a group mute), or None; for the append."""
    return queries.send_refusal(Tx(conn, DIALECT), sender, cid, now_ms)


def role_in(conn: sqlite3.Connection, group_id: str, user: str) -> Role | None:
    """``user``'s role in a live group, inside the caller's transaction (e.g. the
    append's, to check an ``@all`` mention); None if not a member or dismissed."""
    return queries.role_of(Tx(conn, DIALECT), group_id, user)

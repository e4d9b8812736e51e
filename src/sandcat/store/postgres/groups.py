"""Group checks inside PostgreSQL's message append (the group store itself is
``store.sql.groups.backend.SqlGroupStore``, one for both engines)."""

from __future__ import annotations

from sandcat.store.groups import Role
from sandcat.store.postgres.database import Connection
from sandcat.store.postgres.dialect import DIALECT
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups import queries


def send_refusal(conn: Connection, sender: str, cid: str, now_ms: int) -> str | None:
    """Why ``sender`` may not post in ``cid`` now (a group mute), or None; for the append."""
    return queries.send_refusal(Tx(conn, DIALECT), sender, cid, now_ms)


def role_in(conn: Connection, group_id: str, user: str) -> Role | None:
    """``user``'s role in a live group, inside the caller's transaction (e.g. the
    append's, to check an ``@all`` mention); None if not a member or dismissed."""
    return queries.role_of(Tx(conn, DIALECT), group_id, user)

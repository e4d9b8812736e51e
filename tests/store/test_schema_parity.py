"""Both engines' schemas, after every migration, have the same tables, columns,
nullability and unique keys (the types differ by design: integer ms vs
``timestamptz``, 0/1 vs ``boolean``, msgpack bytes vs ``text[]``).

A difference that is meant is listed, with its reason, in ``INTENDED``; any
other difference fails, so a migration written for one engine only is caught.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import trio

from sandcat.store.sqlite import open_database

#: A table: its columns (name -> nullable) and its unique keys (column tuples).
Schema = dict[str, tuple[dict[str, bool], set[tuple[str, ...]]]]

#: Tables only one engine has, each with why.
ONLY_SQLITE: dict[str, str] = {}
ONLY_POSTGRES: dict[str, str] = {
    # Migration bookkeeping: SQLite keeps the version in PRAGMA user_version.
    "schema_migrations": "SQLite's PRAGMA user_version",
    # The transactional outbox of cluster mode (Kafka), PostgreSQL only.
    "outbox": "cluster mode is PostgreSQL only",
    "outbox_owners": "cluster mode is PostgreSQL only",
    # Leases of the cluster singletons (docs/roles.md): roles are PostgreSQL only.
    "task_leases": "server.role is PostgreSQL only",
}
#: Unique keys only one engine has, each with why (table, columns).
INTENDED_KEYS: dict[tuple[str, tuple[str, ...]], str] = {
    # Messages are partitioned by month in PostgreSQL, and a unique index on a
    # partitioned table must contain the partition key: the message keys are
    # unique per partition (made by the partition function) and the append
    # checks them across partitions.
    ("messages", ("cid", "seq")): "per partition in PostgreSQL",
    ("messages", ("mid",)): "per partition in PostgreSQL",
    ("messages", ("sender", "cid", "cmid")): "per partition in PostgreSQL",
}


def _sqlite_schema(path: Path) -> Schema:
    conn = sqlite3.connect(path)
    try:
        schema: Schema = {}
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            # A primary key column is never null (SQLite reports notnull 0 for some).
            columns = {name: not (notnull or pk) for _, name, _, notnull, _, pk in info}
            keys: set[tuple[str, ...]] = set()
            ordered = sorted((pk, name) for _, name, _, _, _, pk in info if pk)
            if ordered:
                keys.add(tuple(name for _, name in ordered))
            for _, index, unique, _, _ in conn.execute(f"PRAGMA index_list({table})"):
                if unique:
                    cols = conn.execute(f"PRAGMA index_info({index})").fetchall()
                    keys.add(tuple(name for _, _, name in sorted(cols)))
            schema[table] = (columns, keys)
        return schema
    finally:
        conn.close()


def _postgres_schema(url: str) -> Schema:
    with psycopg.connect(url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') "
                "AND NOT c.relispartition AND c.relnamespace = current_schema()::regnamespace"
            )
        ]
        schema: Schema = {}
        for table in tables:
            columns = {
                str(name): nullable == "YES"
                for name, nullable in conn.execute(
                    "SELECT column_name, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s",
                    (table,),
                )
            }
            keys = {
                tuple(names)
                for (names,) in conn.execute(
                    "SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index x "
                    "CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
                    "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
                    "WHERE x.indisunique AND x.indrelid = %s::regclass GROUP BY x.indexrelid",
                    (table,),
                )
            }
            schema[table] = (columns, keys)
        return schema


async def test_both_engines_have_the_same_tables_columns_nullability_and_unique_keys(
    tmp_path: Path, postgres_url: str
) -> None:
    path = tmp_path / "parity.db"
    with trio.fail_after(30):
        async with open_database(path):
            pass
    lite, pg = _sqlite_schema(path), _postgres_schema(postgres_url)

    assert set(lite) - set(pg) == set(ONLY_SQLITE)
    assert set(pg) - set(lite) == set(ONLY_POSTGRES)
    differences = []
    for table in sorted(set(lite) & set(pg)):
        (lite_columns, lite_keys), (pg_columns, pg_keys) = lite[table], pg[table]
        if lite_columns != pg_columns:
            differences.append((table, "columns", lite_columns, pg_columns))
        for key in lite_keys ^ pg_keys:
            if (table, key) not in INTENDED_KEYS:
                side = "sqlite" if key in lite_keys else "postgres"
                differences.append((table, "unique key only in " + side, key, None))
    assert differences == [], "\n".join(map(repr, differences))

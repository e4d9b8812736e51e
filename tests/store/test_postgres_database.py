"""The PostgreSQL adapter on a real server: deadlines, failures, and several instances."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import psycopg
import pytest
import trio

from sandcat.errors import Conflict, StoreUnavailable
from sandcat.store.accounts import Session
from sandcat.store.messages import Appended, NewMessage
from sandcat.store.postgres import Database, open_database
from sandcat.store.postgres.append import message_store
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.conversations import open_conversation
from tests.postgres import free_port
from tests.store.backend import make_user

NOW = 1_700_000_000_000


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    async with open_database(postgres_url, pool_size=1, timeout_s=1.0) as opened:
        accounts = SqlAccountStore(opened, POSTGRES)
        for user in ("a", "b"):
            await accounts.create_user(make_user(user))
        await opened.write(
            lambda conn: open_conversation(
                Tx(conn, POSTGRES), cid="d:a:b", kind="direct", members=("a", "b"), now_ms=1
            )
        )
        yield opened


def send(cmid: str, sender: str = "a", cid: str = "d:a:b") -> NewMessage:
    return NewMessage(sender, f"{sender}-d", cid, cmid, 1, b"\xa1x")


async def backend_pid(db: Database) -> int:
    return int(await db.read(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0]))  # type: ignore[index]


async def test_an_unreachable_server_is_unavailable() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with trio.fail_after(10), pytest.raises(StoreUnavailable):
        async with open_database(url, pool_size=1, timeout_s=2):
            pass  # pragma: no cover


@pytest.mark.skipif(
    bool(os.environ.get("SANDCAT_TEST_POSTGRES_URL")), reason="needs the server's processes"
)
async def test_a_stalled_server_hits_the_deadline_and_the_pool_recovers(db: Database) -> None:
    """SIGSTOP the connection's server process: the caller is released at the deadline."""
    pid = await backend_pid(db)
    store = message_store(db)
    os.kill(pid, signal.SIGSTOP)
    try:
        with trio.fail_after(5):
            started = trio.current_time()
            with pytest.raises(StoreUnavailable, match="took over"):
                await store.append([send("1")], now_ms=NOW, open_direct=False)
            assert trio.current_time() - started < 3
    finally:
        os.kill(pid, signal.SIGCONT)
    with trio.fail_after(10):
        # The abandoned connection is not reused: the next call gets a new one.
        assert await backend_pid(db) != pid
        # Whatever the stalled transaction did, the resend is stored exactly once.
        [outcome] = await store.append([send("1")], now_ms=NOW, open_direct=False)
        assert isinstance(outcome, Appended)
        assert outcome.message.seq == 1


async def test_a_killed_connection_fails_one_call_then_reconnects(
    db: Database, postgres_url: str
) -> None:
    pid = await backend_pid(db)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    store = message_store(db)
    with trio.fail_after(10):
        with pytest.raises(StoreUnavailable):
            await store.append([send("1")], now_ms=NOW, open_direct=False)
        [outcome] = await store.append([send("1")], now_ms=NOW, open_direct=False)
        assert isinstance(outcome, Appended)
        assert (outcome.message.seq, outcome.duplicate) == (1, False)
        assert await backend_pid(db) != pid


async def test_integrity_errors_become_conflicts(db: Database) -> None:
    accounts = SqlAccountStore(db, POSTGRES)
    with trio.fail_after(5):
        with pytest.raises(Conflict, match="already exists"):
            await accounts.create_user(make_user("a", "another-name"))
        orphan = Session(
            id="s1",
            family="f1",
            user="nobody",
            device="d",
            platform="web",
            refresh_hash="h",
            created_at=1,
            expires_at=2,
        )
        with pytest.raises(Conflict, match="integrity"):
            await accounts.start_session(orphan)


async def test_a_unique_violation_is_named_by_its_table_and_columns(db: Database) -> None:
    """The constraint's own name is looked up in the catalog: stores name keys portably."""

    def twice(conn: psycopg.Connection[object]) -> None:
        conn.execute("INSERT INTO pairs VALUES (1, 2)")
        conn.execute("INSERT INTO pairs VALUES (1, 2)")

    taken = {"pairs(b, a)": lambda: Conflict("pair taken", field="b")}
    with trio.fail_after(5):
        await db.write(
            lambda conn: conn.execute(
                "CREATE TABLE pairs (a int, b int, CONSTRAINT any_name UNIQUE (b, a))"
            )
        )
        with pytest.raises(Conflict, match="pair taken"):
            await db.write(twice, conflicts=taken)
        # A key made after the catalog was read is found too.
        await db.write(lambda conn: conn.execute("CREATE UNIQUE INDEX later ON pairs (a)"))
        await db.write(lambda conn: conn.execute("INSERT INTO pairs VALUES (1, 2)"))
        with pytest.raises(Conflict, match="a taken"):
            await db.write(
                lambda conn: conn.execute("INSERT INTO pairs VALUES (1, 3)"),
                conflicts={"pairs(a)": lambda: Conflict("a taken")},
            )
        with pytest.raises(Conflict, match="conflicting write"):
            await db.write(twice)


async def test_a_failing_statement_rolls_back_the_whole_batch(
    db: Database, postgres_url: str
) -> None:
    """A real server error on the last row of a COPY: nothing stored, no seq taken."""
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.cmid = 'boom' THEN RAISE EXCEPTION 'no space' USING ERRCODE = 'disk_full'; "
            "END IF; RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION boom()"
        )
    store = message_store(db)
    with trio.fail_after(5):
        with pytest.raises(StoreUnavailable, match="no space"):
            await store.append(
                [send("1"), send("2", "b"), send("boom")], now_ms=NOW, open_direct=False
            )
        assert await db.read(
            lambda c: c.execute("SELECT max_seq FROM conversations").fetchone()
        ) == (0,)
        outcomes = await store.append([send("1"), send("2", "b")], now_ms=NOW, open_direct=False)
        assert [o.message.seq for o in outcomes if isinstance(o, Appended)] == [1, 2]


async def test_a_unique_violation_in_a_batch_is_retryable(db: Database, postgres_url: str) -> None:
    """If a unique index ever catches a duplicate, the batch fails whole and retryably."""
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO messages (cid, seq, mid, sender, device, cmid, kind, body, created_at) "
            "VALUES ('d:a:b', 1, 'stray', 'b', 'd', 'stray', 1, '\\x00', now())"
        )
    with trio.fail_after(5), pytest.raises(StoreUnavailable, match="conflicted"):
        await message_store(db).append([send("1")], now_ms=NOW, open_direct=False)


async def test_two_instances_racing_resends_store_each_message_once(postgres_url: str) -> None:
    """Two persisters on one database, the same sends through both, concurrently (G2, G3)."""
    n, batch = 120, 8
    acks: dict[str, list[tuple[int, str]]] = {}
    with trio.fail_after(60):
        async with (
            open_database(postgres_url, pool_size=3) as first,
            open_database(postgres_url, pool_size=3) as second,
        ):
            accounts = SqlAccountStore(first, POSTGRES)
            for user in ("a", "b"):
                await accounts.create_user(make_user(user))
            await first.write(
                lambda conn: open_conversation(
                    Tx(conn, POSTGRES), cid="g:g", kind="group", members=("a", "b"), now_ms=1
                )
            )

            async def persister(db: Database, order: list[int]) -> None:
                store = message_store(db)
                for start in range(0, n, batch):
                    sends = [send(str(i), cid="g:g") for i in order[start : start + batch]]
                    for outcome in await store.append(sends, now_ms=NOW, open_direct=False):
                        assert isinstance(outcome, Appended)
                        m = outcome.message
                        acks.setdefault(m.cmid, []).append((m.seq, m.mid))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(persister, first, list(range(n)))
                nursery.start_soon(persister, second, list(reversed(range(n))))
                nursery.start_soon(persister, second, list(range(n)))
            page = await message_store(first).pull("b", "g:g", after=0, limit=n + 10)
    assert [m.seq for m in page.messages] == list(range(1, n + 1))
    assert sorted(m.cmid for m in page.messages) == sorted(map(str, range(n)))
    for cmid, seen in acks.items():
        assert len(set(seen)) == 1, cmid


async def test_sync_versions_are_never_skipped_under_concurrent_writers(
    postgres_url: str,
) -> None:
    """A reader syncing by version while two instances write sees every final state."""
    cids = [f"g:c{i}" for i in range(6)]
    seen: dict[str, int] = {}
    with trio.fail_after(60):
        async with (
            open_database(postgres_url, pool_size=3) as first,
            open_database(postgres_url, pool_size=3) as second,
        ):
            await SqlAccountStore(first, POSTGRES).create_user(make_user("a"))
            for cid in cids:
                await first.write(
                    lambda conn, cid=cid: open_conversation(  # type: ignore[misc]
                        Tx(conn, POSTGRES), cid=cid, kind="group", members=("a",), now_ms=1
                    )
                )
            reader = message_store(first)
            writing = True

            async def writer(db: Database, tag: str) -> None:
                store = message_store(db)
                for i in range(40):
                    await store.append(
                        [send(f"{tag}{i}", cid=cids[(i * 7 + len(tag)) % len(cids)])],
                        now_ms=NOW,
                        open_direct=False,
                    )

            async def sync_loop() -> None:
                version: int | None = None
                while True:
                    done = not writing
                    states, version = await reader.conversations("a", since=version)
                    for state in states:
                        seen[state.cid] = state.max_seq
                    if done:
                        return

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sync_loop)
                async with trio.open_nursery() as writers:
                    for db, tag in ((first, "x"), (second, "yy"), (second, "zzz")):
                        writers.start_soon(writer, db, tag)
                writing = False
            final, _ = await reader.conversations("a", since=None)
    assert seen == {state.cid: state.max_seq for state in final}
    assert sum(seen.values()) == 120

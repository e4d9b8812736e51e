"""Ids and conversation ids, parsed at the edge (protocol/SPEC.md §3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandcat.errors import BadRequest
from sandcat.ids import (
    Cid,
    direct_cid,
    group_cid,
    is_id,
    new_id,
    new_ids,
    parse_cid,
    parse_id,
)
from sandcat.protocol import is_valid_cid

ids = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
    min_size=1,
    max_size=64,
)


def test_new_ids_are_valid_and_distinct() -> None:
    made = {new_id() for _ in range(1000)}
    assert len(made) == 1000
    for value in made:
        assert len(value) == 16
        assert is_id(value)
        assert parse_id(value, field="id") == value


@pytest.mark.parametrize("count", [0, 1, 2, 500])
def test_message_ids_made_together_are_valid_and_distinct(count: int) -> None:
    made = new_ids(count, 1_700_000_000_000)
    assert len(made) == len(set(made)) == count
    for value in made:
        assert len(value) == 25
        assert is_id(value)
        assert value[:9] == made[0][:9]
        assert value.startswith("m")


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (0, 1),
        (1_700_000_000_000, 1_700_000_000_001),
        (1_700_000_000_063, 1_700_000_000_064),  # a carry into the next character
        (2**47 - 1, 2**47),
        (2**48 - 2, 2**48 - 1),  # the last millisecond 8 characters hold
    ],
)
def test_message_ids_sort_by_their_time(earlier: int, later: int) -> None:
    (first,) = new_ids(1, earlier)
    (second,) = new_ids(1, later)
    assert first[:9] < second[:9]
    assert first < second


def test_the_time_alphabet_is_the_id_alphabet_in_ascii_order() -> None:
    from sandcat.ids import _ORDERED

    assert list(_ORDERED) == sorted(_ORDERED)
    assert len(set(_ORDERED)) == 64
    assert is_id(_ORDERED)


@pytest.mark.parametrize("value", ["a", "A-b_9", "x" * 64])
def test_parse_id_accepts(value: str) -> None:
    assert parse_id(value, field="to") == value


@pytest.mark.parametrize("value", ["", "x" * 65, "a:b", "a b", "é", "a/b", None, 5, b"ab"])
def test_parse_id_rejects_and_names_the_field(value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_id(value, field="to")
    assert caught.value.field == "to"
    assert "to" in caught.value.message


def test_direct_cid_orders_the_two_ids() -> None:
    assert direct_cid("b", "a") == "d:a:b"
    assert direct_cid("a", "b") == "d:a:b"
    # Code point order: upper case sorts before lower case, digits before both.
    assert direct_cid("a", "B") == "d:B:a"
    assert direct_cid("z", "9") == "d:9:z"
    assert group_cid("g1") == "g:g1"


@given(ids, ids)
def test_direct_cid_parses_back_to_its_parts(a: str, b: str) -> None:
    if a == b:
        return
    cid = parse_cid(direct_cid(a, b))
    assert cid.kind == "direct"
    assert set(cid.parts) == {a, b}
    assert cid.value == direct_cid(b, a)
    # The server's parser and the protocol core's validator agree.
    assert is_valid_cid(cid.value)


def test_parse_cid_accepts_direct_and_group() -> None:
    assert parse_cid("d:a:b") == Cid("d:a:b", "direct", ("a", "b"))
    assert parse_cid("g:team-1") == Cid("g:team-1", "group", ("team-1",))
    assert parse_cid("d:" + "a" * 64 + ":" + "b" * 64).parts == ("a" * 64, "b" * 64)


@pytest.mark.parametrize(
    "value",
    [
        "d:b:a",  # unordered
        "d:a:a",  # a conversation with oneself
        "d:a",
        "d:a:b:c",  # extra colon
        "d::b",
        "d:a:",
        "g:",
        "g:a:b",
        "g:a b",
        "g:é",
        "x:a:b",
        "a:b",
        "",
        "g:" + "x" * 65,
        "d:a:" + "b" * 65,
        None,
        7,
    ],
)
def test_parse_cid_rejects(value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_cid(value, field="cid")
    assert caught.value.field == "cid"
    assert not is_valid_cid(value)


def test_peer_of() -> None:
    cid = parse_cid("d:a:b")
    assert cid.peer_of("a") == "b"
    assert cid.peer_of("b") == "a"
    assert cid.peer_of("c") is None
    assert parse_cid("g:a").peer_of("a") is None

"""Ids, cids and limits."""

from __future__ import annotations

import pytest

from sandcat.protocol import (
    DEFAULT_LIMITS,
    Cid,
    Limits,
    direct_cid,
    group_cid,
    is_valid_cid,
    is_valid_id,
    parse_cid,
)


@pytest.mark.parametrize("value", ["a", "A-z_09", "x" * 64])
def test_valid_ids(value: str) -> None:
    assert is_valid_id(value)


@pytest.mark.parametrize("value", ["", "x" * 65, "a:b", "a b", "é", "a\n", 5, None, b"ab"])
def test_invalid_ids(value: object) -> None:
    assert not is_valid_id(value)


@pytest.mark.parametrize("value", ["g:team", "d:alice:bob", "d:A:a", "d:" + "a" * 64 + ":b"])
def test_valid_cids(value: str) -> None:
    assert is_valid_cid(value)


@pytest.mark.parametrize(
    "value",
    ["g:", "d:alice", "d:bob:alice", "d:a:a", "x:a", "g:a:b", "d:a:b:c", "g:a\n", 1, None],
)
def test_invalid_cids(value: object) -> None:
    assert not is_valid_cid(value)


def test_direct_cid_is_the_same_from_either_side() -> None:
    assert direct_cid("bob", "alice") == direct_cid("alice", "bob") == "d:alice:bob"
    # Code point order: upper case sorts before lower case.
    assert direct_cid("a", "B") == "d:B:a"


@pytest.mark.parametrize(("a", "b"), [("a", "a"), ("a", "b:c"), ("", "b")])
def test_direct_cid_refuses_invalid_pairs(a: str, b: str) -> None:
    with pytest.raises(ValueError, match="direct_cid"):
        direct_cid(a, b)


def test_group_cid() -> None:
    assert group_cid("team-7") == "g:team-7"
    with pytest.raises(ValueError, match="group_cid"):
        group_cid("team:7")


def test_default_limits_are_the_v1_contract() -> None:
    assert Limits() == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_frame_bytes == 65536
    assert DEFAULT_LIMITS.max_depth == 16
    assert DEFAULT_LIMITS.max_text_bytes == 16384
    assert DEFAULT_LIMITS.max_pull_limit == 200
    assert DEFAULT_LIMITS.max_id_chars == 64


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_tunable_limits_must_be_positive_ints(value: object) -> None:
    with pytest.raises(ValueError, match="max_depth: must be a positive int"):
        Limits(max_depth=value)  # type: ignore[arg-type]


def test_a_direct_cid_parses_to_its_two_users() -> None:
    cid = parse_cid(direct_cid("bob", "alice"))
    assert cid == Cid("d:alice:bob", "direct", ("alice", "bob"))
    assert cid.group is None
    assert (cid.peer_of("alice"), cid.peer_of("bob"), cid.peer_of("carol")) == (
        "bob",
        "alice",
        None,
    )


def test_a_group_cid_parses_to_its_group() -> None:
    cid = parse_cid(group_cid("team-1"))
    assert cid == Cid("g:team-1", "group", ("team-1",))
    assert cid.group == "team-1"
    assert cid.peer_of("team-1") is None


@pytest.mark.parametrize(
    "value", ["d:bob:alice", "d:a:a", "g:", "g:a:b", "x:team", "d:" + "a" * 65 + ":b", 5, None]
)
def test_parse_cid_refuses_what_is_not_a_cid(value: object) -> None:
    assert not is_valid_cid(value)
    with pytest.raises(ValueError, match="not a conversation id"):
        parse_cid(value)

"""The checker can fail: one hand-made history per invariant it must reject."""

from __future__ import annotations

import pytest

from tests.chaos.checker import Violation, check, report
from tests.chaos.history import Checkpoint, HeadRead, History, Receipt, SendOp, Stored

CID = "d:ann:bob"
ANN, BOB = ("ann", "phone"), ("bob", "desk")


def _op(
    n: int, outcome: str | None = "ok", *, seq: int | None = None, code: str | None = None
) -> SendOp:
    seq = n if seq is None and outcome == "ok" else seq
    return SendOp(
        op=n,
        user="ann",
        device="phone",
        cid=CID,
        cmid=f"c{n}",
        content=f"text {n}",
        invoked=float(n),
        outcome=outcome,  # type: ignore[arg-type]
        seq=seq,
        mid=f"m{seq}" if outcome == "ok" else None,
        code=code,
        completed=n + 0.5 if outcome else None,
    )


def _stored(n: int, *, seq: int | None = None, content: str | None = None) -> Stored:
    seq = n if seq is None else seq
    return Stored(CID, seq, f"m{seq}", "ann", f"c{n}", content or f"text {n}")


def _receipt(device: tuple[str, str], seq: int, *, content: str | None = None) -> Receipt:
    return Receipt(device, "push", CID, seq, f"m{seq}", "ann", content or f"text {seq}", seq + 0.6)


def clean() -> History:
    """Three acked sends, all stored and seen by both devices; one refused send."""
    history = History(
        members={CID: frozenset({"ann", "bob"})},
        devices={"ann": ("phone",), "bob": ("desk",)},
    )
    history.ops = [_op(1), _op(2), _op(3), _op(4, "fail", code="forbidden")]
    history.final = {CID: [_stored(1), _stored(2), _stored(3)]}
    history.final_max = {CID: 3}
    history.receipts = [_receipt(d, s) for d in (ANN, BOB) for s in (1, 2, 3)]
    history.heads = [HeadRead(BOB, CID, 3, 10.0, 10.1)]
    history.checkpoints = [Checkpoint("before", {CID: 2}), Checkpoint("after", {CID: 3})]
    history.online = {ANN, BOB}
    return history


def invariants(history: History) -> set[str]:
    return {v.invariant for v in check(history)}


def test_a_clean_history_passes() -> None:
    assert check(clean()) == []


def test_recording_through_the_api_builds_a_clean_history() -> None:
    history = History(members={CID: frozenset({"ann", "bob"})})
    op = history.invoke("ann", "phone", CID, "c1", "hello", instance="a")
    history.ok(op, 1, "m1")
    history.receipt(BOB, "push", CID, 1, "m1", "ann", "hello")
    refused = history.invoke("ann", "phone", "g:x", "c2", "no")
    history.fail(refused, "forbidden")
    retry = history.invoke("ann", "phone", CID, "c3", "later")
    history.fail(retry, "unavailable")
    lost = history.invoke("ann", "phone", CID, "c4", "gone")
    history.info(lost, "connection closed")
    history.head(BOB, CID, 1, invoked=op.completed or 0.0)
    history.final = {CID: [Stored(CID, 1, "m1", "ann", "c1", "hello")]}
    history.final_max = {CID: 1}
    history.online = {ANN, BOB}
    assert (refused.result, retry.result, lost.result) == ("fail", "info", "info")
    assert check(history) == []
    counts = history.counts()
    assert (counts["attempts"], counts["acked"], counts["fail"], counts["info"]) == (4, 1, 1, 2)
    assert history.conversations_of("bob") == [CID]


def test_i1_an_acked_message_missing_from_the_final_state() -> None:
    history = clean()
    history.final[CID] = [_stored(1), _stored(2)]
    history.final_max[CID] = 2
    history.receipts = [r for r in history.receipts if r.seq < 3]
    history.heads = []
    history.checkpoints = []
    assert invariants(history) == {"I1"}


def test_i1_an_acked_seq_holding_other_content() -> None:
    history = clean()
    history.final[CID][1] = _stored(2, content="tampered")
    found = invariants(history)
    assert "I1" in found


def test_i2_a_message_stored_twice() -> None:
    history = clean()
    history.final[CID].append(Stored(CID, 4, "m4", "ann", "c3", "text 3"))
    history.final_max[CID] = 4
    history.online = set()
    assert invariants(history) == {"I2"}


def test_i2_a_resend_acked_with_another_seq() -> None:
    history = clean()
    resend = _op(3)
    resend.op, resend.seq, resend.mid = 9, 4, "m4"
    history.ops.append(resend)
    assert "I2" in invariants(history)


def test_i3_a_hole_in_the_seqs() -> None:
    history = clean()
    history.final[CID] = [_stored(1), _stored(3)]
    history.ops = [_op(1), _op(3)]
    history.receipts = [r for r in history.receipts if r.seq != 2]
    assert invariants(history) == {"I3", "I7"}  # nobody can have seen seq 2 either


def test_i3_a_head_beyond_the_last_message() -> None:
    history = clean()
    history.final_max[CID] = 5
    assert "I3" in invariants(history)


def test_i4_a_device_saw_other_content_at_a_seq() -> None:
    history = clean()
    history.receipts.append(_receipt(BOB, 2, content="a different message"))
    assert invariants(history) == {"I4"}


def test_i4_a_device_saw_a_seq_that_is_not_stored() -> None:
    history = clean()
    history.receipts.append(_receipt(BOB, 7))
    assert invariants(history) == {"I4"}


def test_i4_two_acks_for_different_sends_at_one_seq() -> None:
    history = clean()
    other = _op(5, seq=3)
    history.ops.append(other)
    assert "I4" in invariants(history)


def test_i5_an_indeterminate_send_stored_twice() -> None:
    history = clean()
    history.ops.append(_op(5, "info", code="connection closed"))
    history.ops.append(_op(5, None))
    history.final[CID] += [_stored(5, seq=4), _stored(5, seq=5)]
    history.final_max[CID] = 5
    history.online = set()
    assert invariants(history) == {"I2", "I5"}


def test_i5_an_indeterminate_send_stored_with_other_content() -> None:
    history = clean()
    history.ops.append(_op(5, "info"))
    history.final[CID].append(_stored(5, seq=4, content="not what was sent"))
    history.final_max[CID] = 4
    history.online = set()
    assert invariants(history) == {"I5"}


def test_i5_an_indeterminate_send_stored_once_is_fine() -> None:
    history = clean()
    history.ops.append(_op(5, "info", code="unavailable"))
    history.final[CID].append(_stored(5, seq=4))
    history.final_max[CID] = 4
    history.online = set()
    assert check(history) == []


def test_i6_a_refused_send_that_was_stored() -> None:
    history = clean()
    history.final[CID].append(_stored(4))
    history.final_max[CID] = 4
    history.online = set()
    assert invariants(history) == {"I6"}


def test_i7_an_online_device_that_did_not_converge() -> None:
    history = clean()
    history.receipts = [r for r in history.receipts if not (r.device == BOB and r.seq == 2)]
    assert invariants(history) == {"I7"}
    history.online = {ANN}
    assert check(history) == []


def test_i7_a_read_after_an_ack_that_misses_it() -> None:
    history = clean()
    history.heads.append(HeadRead(BOB, CID, 2, 5.0, 5.1))
    assert invariants(history) == {"I7"}


def test_i8_a_checkpoint_that_regressed() -> None:
    history = clean()
    history.checkpoints.append(Checkpoint("after restart", {CID: 1}))
    assert invariants(history) == {"I8"}


def test_i8_a_final_head_below_the_last_checkpoint() -> None:
    history = clean()
    history.checkpoints.append(Checkpoint("later", {CID: 9}))
    assert invariants(history) == {"I8"}


def test_i8_a_read_below_an_earlier_answered_read() -> None:
    history = clean()
    history.heads = [HeadRead(BOB, CID, 3, 10.0, 10.1), HeadRead(ANN, CID, 2, 11.0, 11.1)]
    found = invariants(history)
    assert "I8" in found


def test_many_violations_are_capped_with_a_count() -> None:
    history = clean()
    history.receipts += [_receipt(BOB, 100 + n) for n in range(25)]
    violations = check(history)
    assert len(violations) == 11
    assert violations[-1] == Violation("I4", "... and 15 more")
    assert "I4: " in report(violations)


@pytest.mark.parametrize("code", ["forbidden", "bad_request", "rate_limited"])
def test_definite_codes_make_a_fail(code: str) -> None:
    history = History()
    op = history.invoke("ann", "phone", CID, "c1", "x")
    history.fail(op, code)
    assert op.result == "fail"


def test_a_push_repeated_on_one_connection_violates_i10() -> None:
    history = clean()
    twice = Receipt(BOB, "push", CID, 2, "m2", "ann", "text 2", 2.6, "i0", 1)
    history.receipts += [twice, twice]
    assert invariants(history) == {"I10"}
    # The same push on the device's next connection is a new delivery, not a repeat.
    history.receipts[-1] = Receipt(BOB, "push", CID, 2, "m2", "ann", "text 2", 2.7, "i1", 2)
    assert check(history) == []

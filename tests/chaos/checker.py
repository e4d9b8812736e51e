"""The offline checker: judges a recorded ``History`` against invariants I1-I8 and I10.

The invariants are those of the reliability reference §4.2 (I9, resource
hygiene, needs the servers' insides; I10's "reaches every online recipient"
is folded into I7, since devices fill what the bus failed to push by PULL):

- I1 zero acked loss: every ``ok`` is in the final state at its seq, with
  the same mid, sender, cmid and content.
- I2 no duplicates: each ``(sender, cid, cmid)`` is stored at most once, and
  every ``ok`` for it (resends included) carries the same seq and mid.
- I3 contiguity: each conversation's stored seqs are exactly
  ``min_seq..max_seq``, and its head agrees with its last message.
- I4 agreement: everything any device saw at ``(cid, seq)`` (push, pull or
  ack) is the message stored there; no seq ever maps to two messages.
- I5 indeterminate sends resolve: a send never acked but left ``info`` is
  stored zero times or once, with its own content.
- I6 refused sends never appear: a send every attempt of which was refused
  with a definite code is not stored.
- I7 convergence and read-your-writes: every device online at the end has
  seen every stored seq of each of its conversations; and a head read
  (SYNC, PULL) invoked after an ack reports at least that seq.
- I10 the bus's duplicates are dropped: on one connection a device is
  pushed each ``(cid, seq)`` at most once (the bus delivers at least once; the
  consuming instance drops repeats by ``(cid, seq)``).
- I8 no regression: ground-truth heads never fall from one checkpoint to the
  next nor below the last one at the end, and a head read never reports
  less than a read that was answered before it was invoked.

``check`` returns the violations (empty when the history is clean); it
never raises on bad data, so a test can print every violation at once.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tests.chaos.history import History, SendOp, Stored

#: Violations reported per invariant at most (the count is always given).
_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def check(history: History) -> list[Violation]:
    """Every violation of I1-I8 and I10 in ``history``; empty if none."""
    stored = _index(history)
    checks = (
        _zero_acked_loss(history, stored),
        _no_duplicates(history),
        _contiguity(history),
        _agreement(history, stored),
        _indeterminate_resolve(history),
        _refused_absent(history),
        _convergence(history),
        _read_your_writes(history),
        _no_regression(history),
        _pushed_once(history),
    )
    found: list[Violation] = []
    for violations in checks:
        found.extend(_capped(violations))
    return found


def report(violations: list[Violation]) -> str:
    return "\n".join(str(v) for v in violations)


def _capped(violations: Iterable[Violation]) -> Iterator[Violation]:
    shown = 0
    hidden: dict[str, int] = defaultdict(int)
    for violation in violations:
        if shown < _SHOWN:
            shown += 1
            yield violation
        else:
            hidden[violation.invariant] += 1
    for invariant, count in hidden.items():
        yield Violation(invariant, f"... and {count} more")


def _index(history: History) -> dict[tuple[str, int], Stored]:
    return {(m.cid, m.seq): m for messages in history.final.values() for m in messages}


def _by_key(history: History) -> dict[tuple[str, str, str], list[SendOp]]:
    attempts: dict[tuple[str, str, str], list[SendOp]] = defaultdict(list)
    for op in history.ops:
        attempts[op.key].append(op)
    return attempts


def _stored_by_key(history: History) -> dict[tuple[str, str, str], list[Stored]]:
    copies: dict[tuple[str, str, str], list[Stored]] = defaultdict(list)
    for messages in history.final.values():
        for m in messages:
            copies[(m.sender, m.cid, m.cmid)].append(m)
    return copies


def _zero_acked_loss(
    history: History, stored: dict[tuple[str, int], Stored]
) -> Iterator[Violation]:
    for op in history.ops:
        if op.outcome != "ok":
            continue
        assert op.seq is not None
        found = stored.get((op.cid, op.seq))
        if found is None:
            yield Violation("I1", f"acked {op.cmid} at {op.cid}#{op.seq} is not stored")
        elif (found.mid, found.sender, found.cmid, found.content) != (
            op.mid,
            op.user,
            op.cmid,
            op.content,
        ):
            yield Violation(
                "I1",
                f"acked {op.cmid} ({op.content!r}, {op.mid}) at {op.cid}#{op.seq} but stored "
                f"there: {found.cmid} ({found.content!r}, {found.mid})",
            )


def _no_duplicates(history: History) -> Iterator[Violation]:
    for key, copies in _stored_by_key(history).items():
        if len(copies) > 1:
            seqs = sorted(m.seq for m in copies)
            yield Violation("I2", f"{key} stored {len(copies)} times, at seqs {seqs}")
    for key, attempts in _by_key(history).items():
        acks = {(op.seq, op.mid) for op in attempts if op.outcome == "ok"}
        if len(acks) > 1:
            yield Violation("I2", f"{key} acked differently: {sorted(acks, key=str)}")


def _contiguity(history: History) -> Iterator[Violation]:
    for cid in sorted(set(history.final) | set(history.final_max)):
        seqs = [m.seq for m in history.final.get(cid, [])]
        low = history.final_min.get(cid, 1)
        high = history.final_max.get(cid, max(seqs, default=0))
        if sorted(seqs) != list(range(low, high + 1)):
            missing = sorted(set(range(low, high + 1)) - set(seqs))
            extra = sorted(s for s in set(seqs) if not low <= s <= high)
            repeated = sorted({s for s in seqs if seqs.count(s) > 1})
            yield Violation(
                "I3",
                f"{cid} seqs are not {low}..{high}: missing {missing[:20]}, outside {extra[:20]}, "
                f"repeated {repeated[:20]}",
            )


def _agreement(history: History, stored: dict[tuple[str, int], Stored]) -> Iterator[Violation]:
    claims: dict[tuple[str, int], set[tuple[str, str, str]]] = defaultdict(set)
    for r in history.receipts:
        claims[(r.cid, r.seq)].add((r.mid, r.sender, r.content))
        found = stored.get((r.cid, r.seq))
        if found is None:
            yield Violation(
                "I4", f"{r.device} saw {r.cid}#{r.seq} ({r.source}) which is not stored"
            )
        elif (found.mid, found.sender, found.content) != (r.mid, r.sender, r.content):
            yield Violation(
                "I4",
                f"{r.device} saw {r.cid}#{r.seq} as {r.content!r} ({r.source}), "
                f"stored as {found.content!r}",
            )
    for op in history.ops:
        if op.outcome == "ok":
            assert op.seq is not None
            assert op.mid is not None
            claims[(op.cid, op.seq)].add((op.mid, op.user, op.content))
    for (cid, seq), seen in sorted(claims.items()):
        if len(seen) > 1:
            yield Violation("I4", f"{cid}#{seq} maps to {len(seen)} messages: {sorted(seen)}")


def _indeterminate_resolve(history: History) -> Iterator[Violation]:
    copies = _stored_by_key(history)
    for key, attempts in _by_key(history).items():
        results = {op.result for op in attempts}
        if "ok" in results or "info" not in results:
            continue
        found = copies.get(key, [])
        if len(found) > 1:
            yield Violation("I5", f"unresolved {key} stored {len(found)} times")
        elif found and found[0].content != attempts[0].content:
            yield Violation("I5", f"unresolved {key} stored with other content")


def _refused_absent(history: History) -> Iterator[Violation]:
    copies = _stored_by_key(history)
    for key, attempts in _by_key(history).items():
        if all(op.outcome == "fail" for op in attempts) and copies.get(key):
            codes = sorted({str(op.code) for op in attempts})
            yield Violation("I6", f"refused {key} ({', '.join(codes)}) is stored")


def _convergence(history: History) -> Iterator[Violation]:
    seen: dict[tuple[tuple[str, str], str], set[int]] = defaultdict(set)
    for r in history.receipts:
        seen[(r.device, r.cid)].add(r.seq)
    for device in sorted(history.online):
        for cid in history.conversations_of(device[0]):
            low = history.final_min.get(cid, 1)
            high = history.final_max.get(cid, 0)
            missing = sorted(set(range(low, high + 1)) - seen[(device, cid)])
            if missing:
                yield Violation(
                    "I7",
                    f"{device} never saw {len(missing)} of {cid}'s {low}..{high}: {missing[:20]}",
                )


def _read_your_writes(history: History) -> Iterator[Violation]:
    acked: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for op in history.ops:
        if op.outcome == "ok":
            assert op.completed is not None
            assert op.seq is not None
            acked[op.cid].append((op.completed, op.seq))
    highest: dict[str, tuple[list[float], list[int]]] = {
        cid: _running_max(sorted(points)) for cid, points in acked.items()
    }
    for read in history.heads:
        floor = _max_before(highest.get(read.cid), read.invoked)
        if floor > read.max_seq:
            yield Violation(
                "I7",
                f"{read.device} read {read.cid} max_seq {read.max_seq} after seq {floor} was acked",
            )


def _no_regression(history: History) -> Iterator[Violation]:
    last: dict[str, tuple[str, int]] = {}
    for checkpoint in history.checkpoints:
        for cid, head in checkpoint.heads.items():
            before = last.get(cid)
            if before is not None and head < before[1]:
                yield Violation(
                    "I8",
                    f"{cid} max_seq fell from {before[1]} ({before[0]}) to {head} "
                    f"({checkpoint.label})",
                )
            last[cid] = (checkpoint.label, head)
    for cid, (label, head) in sorted(last.items()):
        if history.final_max.get(cid, 0) < head:
            yield Violation(
                "I8",
                f"{cid} ended at max_seq {history.final_max.get(cid, 0)}, below {head} ({label})",
            )
    answered: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for read in history.heads:
        answered[read.cid].append((read.completed, read.max_seq))
    highest = {cid: _running_max(sorted(points)) for cid, points in answered.items()}
    for read in history.heads:
        floor = _max_before(highest.get(read.cid), read.invoked)
        if floor > read.max_seq:
            yield Violation(
                "I8",
                f"{read.device} read {read.cid} max_seq {read.max_seq} after another read "
                f"had answered {floor}",
            )


def _running_max(points: list[tuple[float, int]]) -> tuple[list[float], list[int]]:
    times, maxima, best = [], [], 0
    for at, value in points:
        best = max(best, value)
        times.append(at)
        maxima.append(best)
    return times, maxima


def _max_before(index: tuple[list[float], list[int]] | None, moment: float) -> int:
    """The largest value answered strictly before ``moment`` (0 if none)."""
    if index is None:
        return 0
    times, maxima = index
    position = bisect.bisect_left(times, moment)
    return maxima[position - 1] if position else 0


def _pushed_once(history: History) -> Iterator[Violation]:
    pushes: dict[tuple[tuple[str, str], int, str, int], int] = defaultdict(int)
    for r in history.receipts:
        if r.source == "push" and r.connection:
            pushes[(r.device, r.connection, r.cid, r.seq)] += 1
    for (device, connection, cid, seq), count in sorted(pushes.items()):
        if count > 1:
            yield Violation(
                "I10", f"{device} was pushed {cid}#{seq} {count} times on connection {connection}"
            )

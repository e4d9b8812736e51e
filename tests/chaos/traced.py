"""``python -m tests.chaos.traced serve …``: ``tests.serve`` under tracemalloc, for the soak.

The soak's ``--trace-at`` runs every instance through this entry point. The
first SIGUSR2 starts tracing Python's allocations (``TRACE_FRAMES`` frames
each; not from the start: tracing slows startup down too much on a loaded
machine, and what grows later is allocated later), and each further one
writes a snapshot to ``$CHAOS_TRACE_DIR/PID-N.snap`` with a line of
totals (traced bytes now and at peak, RSS) in ``$CHAOS_TRACE_DIR/PID.txt``. The
soak sends SIGUSR2 at the given minutes; comparing two snapshots of one process
by traceback shows what grew (``python -m tests.chaos.traced compare A B``).
Diagnostics only: tracing slows the instance down.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

TRACE_FRAMES = 12
_numbers = itertools.count(1)


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _dump(_signum: int, _frame: FrameType | None) -> None:
    folder = Path(os.environ["CHAOS_TRACE_DIR"])
    if not tracemalloc.is_tracing():
        tracemalloc.start(TRACE_FRAMES)
        with open(folder / f"{os.getpid()}.txt", "a") as totals:
            totals.write(f"0 tracing started rss_kib={_rss_kib()}\n")
        return
    n = next(_numbers)
    snapshot = tracemalloc.take_snapshot()
    snapshot.dump(str(folder / f"{os.getpid()}-{n}.snap"))
    traced, peak = tracemalloc.get_traced_memory()
    with open(folder / f"{os.getpid()}.txt", "a") as totals:
        totals.write(
            f"{n} traced_kib={traced // 1024} peak_kib={peak // 1024} rss_kib={_rss_kib()}\n"
        )


def compare(old: str, new: str, top: int = 25) -> None:
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    ]
    a = tracemalloc.Snapshot.load(old).filter_traces(ignore)
    b = tracemalloc.Snapshot.load(new).filter_traces(ignore)
    total = sum(s.size for s in b.statistics("filename")) - sum(
        s.size for s in a.statistics("filename")
    )
    print(f"traced growth: {total / 1024:.0f} KiB")
    for key in ("lineno", "traceback"):
        print(f"\n== top {top} by {key} ==")
        for stat in b.compare_to(a, key)[:top]:
            print(
                f"{stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d} blocks  "
                f"now {stat.size / 1024:.0f} KiB"
            )
            frames = (
                stat.traceback.format()[-(TRACE_FRAMES * 2) :]
                if key == "traceback"
                else [str(stat.traceback[0])]
            )
            for line in frames:
                print("    " + line)


if __name__ == "__main__":
    if sys.argv[1:2] == ["compare"]:
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 25)
        sys.exit(0)
    signal.signal(signal.SIGUSR2, _dump)
    from sandcat.cli import main
    from tests.passwords import FAST_PASSWORDS

    sys.exit(main(sys.argv[1:], passwords=FAST_PASSWORDS))

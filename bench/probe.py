"""A bare PostgreSQL commit, timed over and over beside a cluster run (its own process).

``python bench/probe.py URL [PERIOD_S]`` commits one single-row INSERT
(autocommit) every ``PERIOD_S`` (default 0.01 s) into a table of its own
until its standard input closes, then prints the commits' latencies in
seconds as one JSON list, after a line ``ready`` once it is connected. A
process of its own, so the load generator's
interpreter lock does not lengthen what it measures. The cluster bench
(``bench.cluster.commit_probe``) runs it and reports the latencies as
``probe_pg_commit``: the floor a send's ack waits on in the same run.
"""

from __future__ import annotations

import json
import select
import sys
import time

import psycopg


def main(argv: list[str]) -> int:
    url = argv[1]
    period_s = float(argv[2]) if len(argv) > 2 else 0.01
    latencies: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (id bigserial PRIMARY KEY, n int)")
        # Connected: the bench starts its measured phase only after this line.
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while not select.select([sys.stdin], [], [], period_s)[0]:
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_probe (n) VALUES (1)")
            latencies.append(time.perf_counter() - started)
    json.dump(latencies, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

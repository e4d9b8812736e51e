"""One cluster for the whole chaos package, and one cast per module that needs one.

Starting a cluster (PostgreSQL, Valkey, S3 and tansu, three instances) is the
dearest part of the suite, so test_cluster.py, test_faults.py and
test_negative_controls.py share one, torn down after the package's last test.
It is the fault suite's (every PostgreSQL, Redis and client link through a fault
proxy, ``faults.FAULT_TOML``); a proxy that passes is a plain link for the other
modules. Each module registers a cast of its own (its own usernames); the
checker only judges the conversations of the cast it is given. The negative
controls run last (the files run in name order): their broken builds stay in
place, and one drops a unique index for good.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos import faults
from tests.chaos.cluster import Cluster, running_cluster
from tests.chaos.workload import Cast, make_cast


@pytest.fixture(scope="package")
def chaos_cluster() -> Iterator[Cluster]:
    with running_cluster(3, proxied=True, extra_toml=faults.FAULT_TOML) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cast(chaos_cluster: Cluster) -> Cast:
    return make_cast(chaos_cluster)

"""One cluster and one cast for the whole chaos module: the scenarios run in order on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import Cluster, running_cluster
from tests.chaos.workload import Cast, make_cast


@pytest.fixture(scope="module")
def chaos_cluster() -> Iterator[Cluster]:
    with running_cluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cast(chaos_cluster: Cluster) -> Cast:
    return make_cast(chaos_cluster)

"""A small multi-node Ray cluster on this machine for the issue 19 tests (loopback only):
a head without agent slots and worker nodes with ``pa_agent`` slots, 1 CPU each, no
dashboard. ``cluster`` is shared by the package's tests that leave it as they found it;
a test that takes a node away starts its own with ``start_cluster``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'parallel-agents[ray]'")
cluster_utils = pytest.importorskip("ray.cluster_utils")


@contextmanager
def start_cluster(workers: int = 2, slots: int = 4) -> Iterator[tuple[Any, set[str]]]:
    """A head (no pa_agent slots: sessions must go to the workers) and ``workers`` worker
    nodes of ``slots`` slots; yields the cluster and the workers' node ids. Loopback only:
    Ray's single-machine mode (the variable below), inherited by every `pa` it runs."""
    old = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    c = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    nodes = [c.add_node(num_cpus=1, resources={"pa_agent": slots}) for _ in range(workers)]
    c.wait_for_nodes()
    try:
        yield c, {n.node_id for n in nodes}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        if old is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = old


@pytest.fixture(scope="package")
def cluster() -> Iterator[tuple[Any, set[str]]]:
    """One cluster for the package's tests (started once: about 10 s on 2 cores); torn down
    after the package's last test so nothing of Ray idles through the rest of the suite."""
    with start_cluster() as c:
        yield c

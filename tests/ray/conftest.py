"""A small multi-node Ray cluster on this machine for the issue 19 tests (loopback only):
a head without agent slots and worker nodes with ``pa_agent`` slots, 1 CPU each, no
dashboard. ``cluster`` is shared by the package's tests that leave it as they found it;
a test that takes a node away starts its own with ``start_cluster``."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'parallel-agents[ray]'")
cluster_utils = pytest.importorskip("ray.cluster_utils")


@contextmanager
def start_cluster(
    workers: int = 2, slots: int = 4, node_env: list[dict[str, str]] | None = None
) -> Iterator[tuple[Any, set[str]]]:
    """A head (no pa_agent slots: sessions must go to the workers) and ``workers`` worker
    nodes of ``slots`` slots (``node_env[i]``: node i's raylet environment, which its
    workers inherit); yields the cluster and the workers' node ids (in the order of
    ``node_env`` as the cluster's ``pa_workers``). Loopback only: Ray's single-machine mode (the variable below),
    inherited by every `pa` it runs."""
    old = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    c = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    envs = node_env or [{} for _ in range(workers)]
    try:
        nodes = [
            c.add_node(num_cpus=1, resources={"pa_agent": slots}, **({"env_vars": e} if e else {}))
            for e in envs
        ]
        c.wait_for_nodes()
        c.pa_workers = [n.node_id for n in nodes]
        yield c, {n.node_id for n in nodes}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        if old is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = old


def poll(what: str, fn: Any, limit: float = 180) -> Any:
    """``fn()``'s first truthy answer, asked until ``limit`` seconds have passed."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(0.1)  # the poll's pace, not a wait for an outcome
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="package")
def cluster() -> Iterator[tuple[Any, set[str]]]:
    """One cluster for the package's tests (started once: about 10 s on 2 cores); torn down
    after the package's last test so nothing of Ray idles through the rest of the suite."""
    with start_cluster() as c:
        yield c


@pytest.fixture(autouse=True)
def _slots_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on the shared ``cluster``: the actors of its sessions (its own PA_HOME,
    its own namespace) are ended, so a test that leaves sessions behind does not starve
    the next ones of `pa_agent` slots (a session's actor holds its slot while it lives)."""
    yield
    if "cluster" not in request.fixturenames:
        return
    from pathlib import Path

    from parallel_agents.runtime import local
    from parallel_agents.runtime.ray_runtime import actor_name, namespace_for

    home = Path(os.environ["PA_HOME"])
    sids = [p.name for p in (home / "sessions").glob("*") if p.is_dir()]
    if not sids:
        return
    c, _ = request.getfixturevalue("cluster")
    mine = not ray.is_initialized()  # connected here only for this: disconnected after
    if mine:
        ray.init(address=c.address, logging_level=40, log_to_driver=False)
    ns = namespace_for(home)
    try:
        for sid in sids:
            # No such actor: discarded or merged already, its slot is back.
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(actor_name(sid), namespace=ns), no_restart=True)
            local.end_tagged(sid)  # what its turn left running on the (local) nodes
    finally:
        if mine:
            ray.shutdown()

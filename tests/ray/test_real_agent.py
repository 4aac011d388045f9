"""Issue 19: a real agent CLI (Claude Code, pinned in .agents) on a Ray worker node,
against pa's scripted model server on 127.0.0.1: its edit comes home and `pa diff` shows
it; the model server saw the CLI's requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ModelServerFactory, model_server, work_repo  # noqa: F401
from tests.e2e.test_pa_agents import PaCli, write_turns
from tests.ray.test_ray_cluster import _turn_state

pytestmark = pytest.mark.e2e


class RayPaCli(PaCli):
    """`pa` whose settings put every session on the test cluster (runtime.kind = ray)."""

    address: str = ""

    def write_config(self) -> None:
        super().write_config()
        with open(self.config, "a", encoding="utf-8") as f:
            f.write(f'[runtime]\nkind = "ray"\n[runtime.ray]\naddress = "{self.address}"\n')


def test_a_real_claude_session_runs_on_a_worker_node(
    cluster: Any, tmp_path: Path, work_repo: Path, model_server: ModelServerFactory  # noqa: F811
) -> None:
    """issue 19: `pa new --agent claude` with runtime.kind = ray: Claude Code runs on a
    worker node, writes a file with its own tool; the file is in the local worktree and
    in `pa diff`; the scripted model server answered its requests."""
    c, workers = cluster
    key = "pa-ray-claude"
    server = model_server([{"match": key, "turns": write_turns("hello.txt", "from ray\n",
                                                               "Done on ray.")}])  # fmt: skip
    cli = RayPaCli(tmp=tmp_path, repo=work_repo, config=tmp_path / "pa-config.toml")
    cli.address = c.address
    cli.use("claude")
    try:
        s = cli.new("claude", "Create hello.txt, please.", server, key, "home-claude")
        sid = s["id"]
        assert cli.wait(sid, timeout=180).returncode == 0, cli.explain(sid)
        shown = cli.show(sid)
        assert shown["status"] == "idle", cli.explain(sid)
        assert shown["options"]["runtime"] == "ray"
        assert _turn_state(sid)["node"] in workers
        assert (Path(shown["worktree"]) / "hello.txt").read_text() == "from ray\n"
        diff = cli("diff", sid).stdout
        assert "hello.txt" in diff and "+from ray" in diff, diff
        assert server.turns(key), "the model server saw no request from the CLI"
        results = [e["payload"].get("text") for e in cli.logs(sid) if e["kind"] == "result"]
        assert results == ["Done on ray."], cli.explain(sid)
    finally:
        out = cli("ls", "--json", check=False)
        if out.returncode == 0:
            for x in json.loads(out.stdout):
                if x["status"] not in ("merged", "discarded"):  # its slot back
                    cli("discard", x["id"], check=False, timeout=180)
        cli("server", "stop", check=False)

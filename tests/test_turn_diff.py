"""Issue 20 §4 (second bullet): a turn's diff is its own, also after a rollback."""

from __future__ import annotations

import json
from pathlib import Path

from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok


def test_turn_diff_after_rollback_starts_at_the_rollback_target(tmp_path: Path) -> None:
    """issue 20 §4b: three turns, rollback to turn 1, send t4: `pa diff --turn 4` shows only
    what turn 4 added (+t4), not -t2 -t3 against turn 3's checkpoint; the rollback shows
    in the conversation."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "base\n"})
    agent = script(
        tmp_path, "import os\nn = os.environ['PA_TURN']\nopen(f't{n}.txt', 'w').write(n + '\\n')\n"
    )
    sid = str(new_json("turns", "--cmd", agent, cwd=repo)["id"])
    assert wait_ok(sid).returncode == 0
    for n in (2, 3):
        assert pa("send", sid, f"t{n}").returncode == 0
        assert wait_ok(sid).returncode == 0
    assert pa("rollback", sid, "--turn", "1").returncode == 0
    assert pa("send", sid, "t4").returncode == 0
    assert wait_ok(sid).returncode == 0
    d = json.loads(pa("diff", sid, "--turn", "4", "--json").stdout)
    assert [(f["path"], f["status"]) for f in d["files"]] == [("t4.txt", "A")]
    text = pa("diff", sid, "--turn", "4").stdout
    assert "+4" in text and "t2.txt" not in text and "t3.txt" not in text
    # Earlier turns keep their own diffs; the whole session shows what is there now.
    d3 = json.loads(pa("diff", sid, "--turn", "3", "--json").stdout)
    assert [f["path"] for f in d3["files"]] == ["t3.txt"]
    whole = json.loads(pa("diff", sid, "--json").stdout)
    assert sorted(f["path"] for f in whole["files"]) == ["t1.txt", "t4.txt"]
    logs = pa("logs", sid).stdout
    assert "rolled back to turn 1" in logs
    events = [json.loads(x) for x in pa("logs", sid, "--json").stdout.splitlines()]
    [rb] = [e for e in events if e["kind"] == "rollback"]
    assert rb["payload"]["rollback_to_turn"] == 1 and rb["payload"]["next_turn"] == 4


def test_rollback_twice_before_the_next_turn_uses_the_last_target(tmp_path: Path) -> None:
    """issue 20 §4b: rolling back to turn 1 then to turn 2 before sending: the next turn's
    diff starts at turn 2's checkpoint."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "base\n"})
    agent = script(
        tmp_path, "import os\nn = os.environ['PA_TURN']\nopen(f't{n}.txt', 'w').write(n + '\\n')\n"
    )
    sid = str(new_json("turns", "--cmd", agent, cwd=repo)["id"])
    assert wait_ok(sid).returncode == 0
    for n in (2, 3):
        assert pa("send", sid, f"t{n}").returncode == 0
        assert wait_ok(sid).returncode == 0
    assert pa("rollback", sid, "--turn", "1").returncode == 0
    assert pa("rollback", sid, "--turn", "2").returncode == 0
    assert pa("send", sid, "t4").returncode == 0
    assert wait_ok(sid).returncode == 0
    d = json.loads(pa("diff", sid, "--turn", "4", "--json").stdout)
    assert [f["path"] for f in d["files"]] == ["t4.txt"]
    app = App.open()
    try:
        kinds = [e.kind for e in app.store.events(sid) if e.kind == "rollback"]
        assert kinds == ["rollback", "rollback"]
    finally:
        app.close()

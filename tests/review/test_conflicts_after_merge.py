"""Issue 11 F.6 through `pa`: after a merge, `pa conflicts` blames no one for the merged
session's changes (it reported 18 conflicting pairs, 16 of them false, and a ⚠ on every
row of the dashboard)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok
from tests.review.test_review_cli import five_sessions


def test_conflicts_after_a_merge_blame_only_the_clashing_session(tmp_path: Path) -> None:
    """Issue 11 F.6: s3 and s4 edit the same line; s3 is merged. Then s4 conflicts with the
    base (not with anyone), and sessions started after the merge, one that changed
    nothing and one that added a file, conflict with no one."""
    repo, ids = five_sessions(tmp_path)
    p = pa("merge", ids[3], "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    late = [
        str(new_json("nothing", "--cmd", "true", cwd=repo)["id"]),
        str(
            new_json(
                "adds", "--cmd", script(tmp_path, "open('new.txt','w').write('n')\n"), cwd=repo
            )["id"]
        ),
    ]
    assert wait_ok(*late).returncode == 0
    p = pa("conflicts", "--json")
    assert p.returncode == 0, p.stderr
    fc = json.loads(p.stdout)
    assert fc["pairs"] == []
    assert set(fc["sessions"]) == {*ids[:3], ids[4], *late}
    assert fc["sessions"][ids[4]]["base_conflict_paths"] == ["shared.txt"]
    for sid in (*ids[:3], *late):
        assert fc["sessions"][sid]["clean_with_base"] is True, sid
        assert fc["sessions"][sid]["conflicts_with"] == [], sid

"""Issue 12 items 6 and 7: what `pa logs` and `pa merge` tell a person.

`pa logs` renders conflict events as a sentence (not raw JSON) and prints an agent's final
message once; a `pa merge` stopped by a conflict says what to run next.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok

# Writes the first five characters of its prompt into f.txt: two sessions conflict there.
WRITER = "import os\nopen('f.txt','w').write(os.environ['PA_PROMPT'][:5] + '\\n')\nprint('wrote f.txt')\n"


def _two_conflicting(tmp_path: Path) -> tuple[Path, str, str]:
    repo = make_repo(tmp_path / "repo", {"f.txt": "x\n"})
    a = new_json("AAAAA", "--cmd", script(tmp_path, WRITER, "a.py"), cwd=repo)
    b = new_json("BBBBB", "--cmd", script(tmp_path, WRITER, "b.py"), cwd=repo)
    assert wait_ok(str(a["id"]), str(b["id"])).returncode == 0
    return repo, str(a["id"]), str(b["id"])


def test_logs_render_conflict_events_as_a_sentence(tmp_path: Path) -> None:
    """Issue 12 item 7: a conflict the forecast found shows in `pa logs` as "conflicts with
    session B in f.txt …", not as `conflict: {"with": …}`."""
    _, a, b = _two_conflicting(tmp_path)
    assert pa("conflicts").returncode == 0
    p = pa("logs", a)
    assert p.returncode == 0, p.stderr
    [line] = [x for x in p.stdout.splitlines() if "conflict" in x]
    assert f"conflicts with session {b} in f.txt" in line
    assert "{" not in line and "pa merge ID --fix-conflicts" in line
    raw = [json.loads(x) for x in pa("logs", "--json", a).stdout.splitlines()]
    assert any(e["kind"] == "conflict" for e in raw), "the event itself is unchanged"


def test_logs_print_the_final_message_once(tmp_path: Path) -> None:
    """Issue 12 item 7: an agent's result repeats its last message; `pa logs` printed
    both ("wrote f.txt" then "result: wrote f.txt")."""
    repo = make_repo(tmp_path / "repo", {"f.txt": "x\n"})
    s = new_json("hello", "--cmd", script(tmp_path, WRITER), cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    out = pa("logs", str(s["id"])).stdout
    assert [x for x in out.splitlines() if "wrote f.txt" in x] == ["wrote f.txt"], out
    assert out.splitlines()[-1] == "[running → idle]"


def test_merge_conflict_says_what_to_do_next(tmp_path: Path) -> None:
    """Issue 12 item 6: `pa merge B` stopped by a conflict exits 1 and hints at
    `pa merge B --fix-conflicts` and `pa diff B` (it said only "conflict")."""
    _, a, b = _two_conflicting(tmp_path)
    assert pa("merge", a).returncode == 0
    p = pa("merge", b)
    assert p.returncode == 1
    assert f"{b}  conflict" in p.stdout
    hints = [x for x in p.stderr.splitlines() if x.startswith("hint: ")]
    assert hints, p.stderr
    assert f"pa merge {b} --fix-conflicts" in hints[0] and f"pa diff {b}" in hints[0]
    assert "Traceback" not in p.stderr

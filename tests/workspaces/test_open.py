"""Issue 16 §3: `pa open ID`, a session's worktree in the user's editor. Stand-in editor
programs on PATH record their argv: the worktree path arrives as one argv element (it
holds spaces and shell syntax here), never through a shell."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tests.conftest import make_repo, pa
from tests.foundation.test_cli_sessions import new_json, wait_ok

RECORDER = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["EDITOR_LOG"], "a") as f:
    f.write(json.dumps({{"name": os.path.basename(sys.argv[0]), "argv": sys.argv[1:],
                         "cwd": os.getcwd()}}) + "\\n")
sys.exit(int(os.environ.get("EDITOR_EXIT", "0")))
"""


def _setup(tmp_path: Path, *names: str) -> tuple[str, str, dict[str, str], Path]:
    """A finished headless session whose worktree path holds a space and `$(…)`, and a bin
    folder of stand-in editors; the env to run `pa` with, and the log they write."""
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "my trees $(touch pwned);"
    cfg.write_text(f"worktree_root = {json.dumps(str(root))}\n")
    repo = make_repo(tmp_path / "proj", {"a.txt": "base\n"})
    s = new_json("do it", "--cmd", "true", cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    wt = str(s["worktree"])
    assert wt.startswith(str(root))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for n in names:
        p = bindir / n
        p.write_text(RECORDER)
        p.chmod(0o755)
    log = tmp_path / "editor.log"
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "EDITOR_LOG": str(log),
        "VISUAL": "",
        "EDITOR": "",
    }
    return sid, wt, env, log


def _records(log: Path, n: int = 1, timeout: float = 15) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            lines = log.read_text().splitlines()
            if len(lines) >= n:
                return [json.loads(x) for x in lines]
        time.sleep(0.05)
    raise AssertionError(f"the stand-in editor never ran ({log})")


def test_open_finds_a_gui_editor_and_passes_the_worktree_as_one_argument(
    tmp_path: Path,
) -> None:
    """issue 16 §3: the first GUI editor on PATH gets the worktree as one argv element."""
    sid, wt, env, log = _setup(tmp_path, "zed", "cursor")
    p = pa("open", sid, "--json", env=env)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["editor"] == "cursor" and d["gui"] is True and d["argv"][-1] == wt
    rec = _records(log)[0]
    assert rec["name"] == "cursor" and rec["argv"] == [wt]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_open_editor_choice_print_and_setting(tmp_path: Path) -> None:
    """issue 16 §3: --editor picks a name or a command; --print only prints; the `editor`
    setting is the default choice."""
    sid, wt, env, log = _setup(tmp_path, "code", "zed")
    p = pa("open", sid, "--editor", "zed", "--print", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith(" " + __import__("shlex").quote(wt))
    assert "/zed " in p.stdout
    pj = json.loads(pa("open", sid, "--editor", "zed", "--print", "--json", env=env).stdout)
    assert pj["started"] is False and pj["argv"][-1] == wt
    assert not log.exists()  # --print ran nothing
    p = pa("open", sid, "--editor", "code --new-window", env=env)
    assert p.returncode == 0, p.stderr
    assert _records(log)[0]["argv"] == ["--new-window", wt]
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
    cfg.write_text(cfg.read_text() + 'editor = "zed"\n')
    assert pa("open", sid, env=env).returncode == 0
    recs = _records(log, 2)
    assert recs[1]["name"] == "zed" and recs[1]["argv"] == [wt]


def test_open_terminal_editor_runs_in_the_foreground(tmp_path: Path) -> None:
    """issue 16 §3: with no GUI editor, $VISUAL/$EDITOR runs here, in the foreground, in the
    worktree; its exit code is pa's."""
    sid, wt, env, log = _setup(tmp_path, "fake-vi")
    env["EDITOR"] = "fake-vi -R"
    env["EDITOR_EXIT"] = "3"
    p = pa("open", sid, env=env)
    assert p.returncode == 3
    rec = json.loads(log.read_text().splitlines()[0])  # already there: it ran in the foreground
    assert rec["argv"] == ["-R", wt] and os.path.realpath(str(rec["cwd"])) == os.path.realpath(wt)


def test_open_missing_editor_says_what_was_looked_for(tmp_path: Path) -> None:
    """issue 16 §3: no editor → an error listing what was looked for, no traceback."""
    sid, _wt, env, _log = _setup(tmp_path)
    p = pa("open", sid, env=env)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "no editor found" in p.stderr
    for name in ("code", "cursor", "zed", "idea", "pycharm", "$VISUAL", "$EDITOR"):
        assert name in p.stderr
    assert "hint:" in p.stderr
    p = pa("open", sid, "--editor", "nosuch-editor", env=env)
    assert p.returncode != 0 and "'nosuch-editor' is not on PATH" in p.stderr

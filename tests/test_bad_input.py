"""Issue 11 G: bad input is refused up front (exit 2, nothing created), never accepted and
then failed; what pa prints of user text cannot drive the terminal.

Real `pa` in subprocesses (in-process mode), real git, the `command` agent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import git, make_repo, pa

PY = sys.executable


def sessions() -> list[dict[str, object]]:
    p = pa("ls", "--all", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout) if p.stdout.strip().startswith("[") else []
    assert isinstance(out, list)
    return out


def new_json(*args: str, cwd: Path, input: str | None = None) -> dict[str, object]:
    p = pa("new", "--json", *args, cwd=cwd, input=input)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert isinstance(data, dict)
    return data


def test_nul_in_prompt_is_refused_before_anything_is_created(repo: Path) -> None:
    """issue 11 G: a NUL byte in a prompt is refused (was: accepted, turn 'interrupted')."""
    p = pa("new", "-", "--cmd", "true", cwd=repo, input="fix\0 it")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "NUL" in p.stderr and "Traceback" not in p.stderr
    assert sessions() == []
    assert git(repo, "branch", "--list", "pa/*") == ""


def test_bad_env_keys_and_values_are_refused(repo: Path) -> None:
    """issue 11 G: env names that are empty, contain '=' or start with a digit, and values
    with NUL (here from .parallel-agents.toml, which `pa new --env` shares the check with)
    are refused before a session exists."""
    bad = pa("new", "x", "--cmd", "true", "--env", "1X=y", cwd=repo)
    assert bad.returncode == 2 and "not valid" in bad.stderr, bad.stderr
    for entry in ('"A=B" = "x"', '"" = "x"', 'A = "x\\u0000y"'):
        (repo / ".parallel-agents.toml").write_text(f"env = {{ {entry} }}\n")
        p = pa("new", "x", "--cmd", "true", cwd=repo)
        assert p.returncode == 2, (entry, p.stdout, p.stderr)
        assert "not a valid environment variable" in p.stderr
    assert sessions() == []


def test_long_prompt_reaches_the_command_agent(repo: Path, tmp_path: Path) -> None:
    """issue 11 G: a prompt over Linux's 128 KiB per-string limit still runs: it is on stdin
    and in the file PA_PROMPT_FILE names (PA_PROMPT would make the exec fail)."""
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, sys\n"
        "data = sys.stdin.read()\n"
        "assert 'PA_PROMPT' not in os.environ\n"
        "with open(os.environ['PA_PROMPT_FILE'], encoding='utf-8') as f:\n"
        "    assert f.read() == data\n"
        "open('got.txt', 'w').write(str(len(data)))\n"
    )
    prompt = "é" * 100_000  # 200,000 bytes of UTF-8
    s = new_json("-", "--cmd", f"{PY} {agent}", cwd=repo, input=prompt)
    w = pa("wait", "--timeout", "60", str(s["id"]))
    assert w.returncode == 0, w.stdout + w.stderr
    assert (Path(str(s["worktree"])) / "got.txt").read_text() == str(len(prompt))


def test_short_prompt_still_in_pa_prompt(repo: Path, tmp_path: Path) -> None:
    """issue 11 G: ordinary prompts keep arriving in PA_PROMPT."""
    agent = tmp_path / "agent.py"
    agent.write_text("import os\nopen('got.txt', 'w').write(os.environ['PA_PROMPT'])\n")
    s = new_json("hello there", "--cmd", f"{PY} {agent}", cwd=repo)
    assert pa("wait", "--timeout", "60", str(s["id"])).returncode == 0
    assert (Path(str(s["worktree"])) / "got.txt").read_text() == "hello there"


def test_sql_wildcards_in_an_id_prefix_match_nothing(repo: Path) -> None:
    """issue 11 G: `pa discard %` (or `_`) is not a wildcard that hits a session."""
    s = new_json("x", "--cmd", "true", cwd=repo)
    assert pa("wait", "--timeout", "60", str(s["id"])).returncode == 0
    for prefix in ("%", "_", str(s["id"])[:2] + "%", "_" * 8):
        p = pa("discard", prefix)
        assert p.returncode == 2 and "no session matches" in p.stderr, (prefix, p.stderr)
    assert [x["status"] for x in sessions()] == ["idle"]
    assert pa("show", str(s["id"])[:3]).returncode == 0


def test_titles_with_escape_sequences_are_printed_escaped(repo: Path) -> None:
    """issue 11 G: `pa show` and piped `pa ls` never print raw terminal escape sequences."""
    evil = "evil\x1b]0;pwned\x07\x1b[2J\x9bred"
    s = new_json("x", "--cmd", "true", "--title", evil, cwd=repo)
    assert pa("wait", "--timeout", "60", str(s["id"])).returncode == 0
    for args in (("show", str(s["id"])), ("ls",), ("ls", "--all")):
        p = pa(*args)
        assert p.returncode == 0, p.stderr
        assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "\x9b" not in p.stdout
        assert "evil\\x1b]0;pwned\\x07" in p.stdout, p.stdout
    assert json.loads(pa("show", str(s["id"]), "--json").stdout)["title"] == evil


def test_auto_registered_repo_gets_a_valid_name(tmp_path: Path) -> None:
    """issue 11 G: a repo registered by `pa new` in a folder named 'my repo $(id)' gets a
    name `pa repo add` would accept, and can be removed again."""
    repo = make_repo(tmp_path / "my repo $(id)\nx")
    s = new_json("x", "--cmd", "true", cwd=repo)
    assert s["repo_name"] == "my-repo-id-x"
    assert pa("wait", "--timeout", "60", str(s["id"])).returncode == 0
    assert pa("discard", str(s["id"])).returncode == 0
    rm = pa("repo", "rm", "my-repo-id-x")
    assert rm.returncode == 0, rm.stderr
    assert json.loads(pa("repo", "ls", "--json").stdout) == []


def test_hanging_setup_stopped_by_timeout_is_reported_as_a_timeout(repo: Path) -> None:
    """issue 11 G: a `setup` that hangs past --timeout says it timed out (was: 'setup
    command failed (exit code -2)')."""
    (repo / ".parallel-agents.toml").write_text('setup = "sleep 600"\n')
    s = new_json("x", "--cmd", "true", "--timeout", "1", cwd=repo)
    w = pa("wait", "--timeout", "60", str(s["id"]))
    assert w.returncode != 0
    shown = json.loads(pa("show", str(s["id"]), "--json").stdout)
    assert shown["status"] == "failed", shown
    assert "setup command timed out after 1 s" in shown["error"], shown["error"]
    assert "exit code" not in shown["error"]


def test_nul_in_a_follow_up_or_cmd_is_refused(repo: Path) -> None:
    """issue 11 G: a follow-up prompt with NUL is refused and queues no turn; so is an
    argument of --cmd with NUL (via stdin of `pa send`, and the API's argv list)."""
    s = new_json("x", "--cmd", "true", cwd=repo)
    sid = str(s["id"])
    assert pa("wait", "--timeout", "60", sid).returncode == 0
    p = pa("send", sid, "-", input="again\0")
    assert p.returncode == 2 and "NUL" in p.stderr, p.stderr
    shown = json.loads(pa("show", sid, "--json").stdout)
    assert shown["status"] == "idle" and len(shown["turns"]) == 1

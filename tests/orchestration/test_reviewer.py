"""Issue 15 §3: a reviewer agent. `pa review ID --agent/--cmd` runs a second agent over a
session's diff in a worktree of its own, stores its line comments (all or none), and
`pa review ID --send` gives them to the author as one follow-up.

Real git, the real `pa` CLI, `command` agents as authors and reviewers: one answering
well, one answering garbage, one pointing off the diff, one never answering.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.sessions.reviewer import review_prompt
from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, no_traceback, wait_ok

PY = sys.executable

AUTHOR = """
from pathlib import Path
Path("src/app.py").write_text("print('hi')\\nprint('more')\\n")
Path("notes.txt").write_text("one\\ntwo\\n")
print("edited")
"""

# A good reviewer: it reads the diff in its prompt, scribbles in its own worktree (which
# must never reach the author's) and answers in a few lines of output.
GOOD = """
import json, os
from pathlib import Path
prompt = os.environ.get("PA_PROMPT") or Path(os.environ["PA_PROMPT_FILE"]).read_text()
assert "+print('more')" in prompt, prompt
Path("src/app.py").write_text("the reviewer was here\\n")
print("Looking at the diff...")
answer = {
    "summary": "Two nits.",
    "comments": [
        {"path": "src/app.py", "line": 2, "side": "new", "body": "Say why.\\nAnd test it."},
        {"path": "notes.txt", "line": 1, "body": "Typo?"},
        {"path": "src/app.py", "line": 1, "side": "old", "body": "Keep this line."},
    ],
}
print(json.dumps(answer, indent=2))
"""

GARBAGE = """
print("Looks fine to me! {not json")
"""

OFF_DIFF = """
import json
print(json.dumps({"comments": [
    {"path": "src/app.py", "line": 2, "body": "fine"},
    {"path": "src/app.py", "line": 99, "body": "no such line"},
    {"path": "nowhere.py", "line": 1, "body": "no such file"},
    {"path": "notes.txt", "line": 1, "side": "sideways", "body": "bad side"},
]}))
"""

SILENT = """
import time
while True:
    time.sleep(1)
"""


def _script(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / f"{name}.py"
    p.write_text(body)
    return f"{PY} {p}"


def tree_bytes(wt: Path) -> dict[str, bytes]:
    """Every file of a worktree, and its git index and HEAD, byte for byte."""
    out = {str(p.relative_to(wt)): p.read_bytes() for p in sorted(wt.rglob("*")) if p.is_file()}
    gitdir = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    for name in ("index", "HEAD"):
        out[f"<git>/{name}"] = (gitdir / name).read_bytes()
    return out


def _author(tmp_path: Path) -> dict[str, Any]:
    repo = make_repo(tmp_path / "proj", {"README.md": "# demo\n", "src/app.py": "print('hi')\n"})
    s = new_json("add a second print", "--cmd", _script(tmp_path, "author", AUTHOR), cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    return s


def _review(sid: str, cmd: str, *more: str) -> subprocess.CompletedProcess[str]:
    return pa("review", sid, "--cmd", cmd, *more)


def _reviewers(sid: str) -> list[dict[str, Any]]:
    listed = json.loads(pa("ls", "--all", "--json").stdout)
    return [s for s in listed if (s["options"].get("reviews") or {}).get("session") == sid]


def _comments(sid: str, *more: str) -> list[dict[str, Any]]:
    p = pa("review", sid, "--list", "--json", *more)
    assert p.returncode == 0, p.stderr
    return list(json.loads(p.stdout)["comments"])


def _reviewed_and_sent(tmp_path: Path) -> None:
    s = _author(tmp_path)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    before = tree_bytes(wt)
    p = _review(sid, _script(tmp_path, "good", GOOD), "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    got = [(c["path"], c["line"], c["side"], c["code"], c["body"]) for c in res["comments"]]
    assert got == [
        ("src/app.py", 2, "new", "print('more')", "Say why.\nAnd test it."),
        ("notes.txt", 1, "new", "one", "Typo?"),
        ("src/app.py", 1, "old", "print('hi')", "Keep this line."),
    ]
    assert res["summary"] == "Two nits."
    assert {c["author"] for c in res["comments"]} == {"command reviewer"}
    # The author's worktree, index and HEAD are exactly as they were.
    assert tree_bytes(wt) == before
    # The reviewer is a session tagged with what it reviewed, discarded (archived) now.
    [rv] = _reviewers(sid)
    assert rv["id"] == res["review"]["id"] and rv["status"] == "discarded"
    assert rv["options"]["archive"]["ref"].startswith("refs/pa/archive/")
    assert rv["options"]["reviews"]["base"] == s["base_commit"]
    assert not Path(rv["worktree"]).exists()

    listed = _comments(sid)
    assert [c["id"] for c in listed] == [c["id"] for c in res["comments"]]
    text = pa("review", sid, "--list")
    assert "src/app.py:2" in text.stdout and "Say why." in text.stdout, text.stdout
    first, second, third = listed
    # Some of them: one follow-up, in the dashboard's "Send review comments" text.
    p = pa("review", sid, "--send", "--only", f"{first['id']},{third['id']}", "--json")
    assert p.returncode == 0, p.stderr
    sent = json.loads(p.stdout)
    assert [c["id"] for c in sent["sent"]] == [first["id"], third["id"]]
    assert wait_ok(sid).returncode == 0
    turns = json.loads(pa("show", sid, "--json").stdout)["turns"]
    assert len(turns) == 2
    assert turns[1]["prompt"] == (
        "Review comments on your changes:\n\n"
        "1. src/app.py line 2:\n   > print('more')\n   Say why.\n   And test it.\n\n"
        "2. src/app.py line 1 (old version):\n   > print('hi')\n   Keep this line.\n\n"
        "Please address each comment."
    )
    assert turns[1]["prompt"] == review_prompt([first, third])
    assert [c["id"] for c in _comments(sid)] == [second["id"]]
    assert all(c["sent_turn"] == 2 for c in _comments(sid, "--all") if c["id"] != second["id"])
    again = pa("review", sid, "--send", "--only", str(first["id"]))
    no_traceback(again)
    assert again.returncode == 2 and "already sent" in again.stderr and "hint:" in again.stderr
    assert pa("review", sid, "--send").returncode == 0  # the rest
    assert wait_ok(sid).returncode == 0
    none = pa("review", sid, "--send")
    assert none.returncode == 2 and "no unsent reviewer comments" in none.stderr


def test_reviewer_comments_are_stored_listed_and_sent(tmp_path: Path) -> None:
    """issue 15 §3: a reviewer's line comments, the author's worktree untouched, sent as
    one follow-up (all or some)."""
    _reviewed_and_sent(tmp_path)


@pytest.mark.usefixtures("server_mode")
def test_reviewer_through_the_server(tmp_path: Path) -> None:
    """issue 15 §3: the same through the background server (the HTTP transport)."""
    _reviewed_and_sent(tmp_path)


def _rejected(tmp_path: Path, sid: str, p: subprocess.CompletedProcess[str]) -> None:
    no_traceback(p)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "error:" in p.stderr and "hint:" in p.stderr
    assert _comments(sid, "--all") == []
    [rv] = _reviewers(sid)
    assert rv["status"] == "discarded" and not Path(rv["worktree"]).exists()


def test_garbage_answer_stores_nothing(tmp_path: Path) -> None:
    """issue 15 §3: an answer that is not the JSON asked for is an error, not comments."""
    sid = str(_author(tmp_path)["id"])
    p = _review(sid, _script(tmp_path, "garbage", GARBAGE))
    assert "is not JSON of the form" in p.stderr and "Looks fine to me!" in p.stderr
    _rejected(tmp_path, sid, p)


def test_comments_off_the_diff_reject_the_whole_answer(tmp_path: Path) -> None:
    """issue 15 §3: unknown paths, lines the diff does not show and bad sides are named;
    the good comment beside them is not stored either (never half-trusted)."""
    sid = str(_author(tmp_path)["id"])
    p = _review(sid, _script(tmp_path, "off", OFF_DIFF))
    err = " ".join(p.stderr.split())
    assert "line 99 of src/app.py (new side) is not in the diff (it shows lines 1-2)" in err
    assert "'nowhere.py' is not a file of the diff" in err
    assert "side 'sideways'" in err
    _rejected(tmp_path, sid, p)


def test_a_reviewer_that_never_answers_times_out(tmp_path: Path) -> None:
    """issue 15 §3: a reviewer that never answers is stopped at --timeout; nothing stored."""
    sid = str(_author(tmp_path)["id"])
    p = _review(sid, _script(tmp_path, "silent", SILENT), "--timeout", "1")
    assert "timed out" in p.stderr
    _rejected(tmp_path, sid, p)


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    """issue 15 §3: no mode, two modes, a session without changes, an unknown comment id."""
    s = _author(tmp_path)
    sid = str(s["id"])
    for args, words in (
        ((), "say what to do"),
        (("--list", "--send"), "choose one of"),
        (("--only", "1", "--list"), "--only goes with --send"),
        (("--send", "--only", "x"), "is not a list of comment ids"),
        (("--send", "--only", "42"), "not comments of session"),
    ):
        bad = pa("review", sid, *args)
        no_traceback(bad)
        assert bad.returncode == 2 and words in bad.stderr, (args, bad.stderr)
    fresh = new_json("nothing", "--cmd", "true", cwd=make_repo(tmp_path / "other"))
    assert wait_ok(str(fresh["id"])).returncode == 0
    idle = _review(str(fresh["id"]), _script(tmp_path, "good", GOOD))
    assert idle.returncode == 2 and "has not changed anything" in idle.stderr
    assert _reviewers(str(fresh["id"])) == []
    busy = new_json("work", "--cmd", _script(tmp_path, "silent", SILENT), cwd=tmp_path / "other")
    working = _review(str(busy["id"]), _script(tmp_path, "good", GOOD))
    no_traceback(working)
    assert working.returncode == 1 and "its turn has not ended" in working.stderr
    assert f"pa wait {busy['id']}" in working.stderr
    assert pa("stop", str(busy["id"])).returncode == 0
    assert _reviewers(str(busy["id"])) == []


def test_an_answer_nobody_waited_for_is_collected_by_list(tmp_path: Path) -> None:
    """issue 15 §3: a reviewer whose `pa review` was stopped is read by `pa review --list`."""
    from parallel_agents.client import Client

    sid = str(_author(tmp_path)["id"])
    (tmp_path / "good.py").write_text(GOOD)
    with Client.in_process() as cl:
        started = cl.review_start(sid, cmd=[PY, str(tmp_path / "good.py")])
    rid = started["review"]["id"]
    assert wait_ok(rid).returncode == 0
    p = pa("review", sid, "--list")
    assert p.returncode == 0, p.stderr
    assert f"collected 3 comment(s) of reviewer {rid}" in p.stderr
    assert len(_comments(sid)) == 3
    [rv] = _reviewers(sid)
    assert rv["status"] == "discarded"


def test_diff_lines_reads_every_kind_of_file_change(tmp_path: Path) -> None:
    """issue 15 §3: what a comment may point at, from a real `git diff -M`: added, deleted,
    renamed and edited files, names with spaces and non-ASCII letters, binary files."""
    from parallel_agents.git import diffs
    from parallel_agents.sessions.reviewer import diff_lines

    repo = make_repo(
        tmp_path / "kinds",
        {
            "gone.txt": "a\nb\n",
            "old name.txt": "".join(f"line {i}\n" for i in range(1, 30)),
            "edit.py": "".join(f"x{i} = {i}\n" for i in range(1, 21)),
            "blob.bin": "\0\1\2",
        },
    )
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "rm", "-q", "gone.txt")
    git(repo, "mv", "old name.txt", "new näme.txt")
    (repo / "new näme.txt").write_text(
        "".join(f"line {i}\n" for i in range(1, 30)).replace("line 15\n", "line fifteen\n")
    )
    (repo / "edit.py").write_text(
        "".join(f"x{i} = {i}\n" for i in range(1, 21)).replace("x10 = 10\n", "x10 = 100\n")
    )
    (repo / "blob.bin").write_bytes(b"\0\3")
    (repo / "added.md").write_text("new\nfile\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "changes")
    patch = "".join(diffs.diff_stream(repo, base, "HEAD"))
    files = diff_lines(patch)
    assert set(files) == {"gone.txt", "new näme.txt", "edit.py", "blob.bin", "added.md"}
    assert files["added.md"].new == {1: "new", 2: "file"} and files["added.md"].old == {}
    assert files["gone.txt"].old == {1: "a", 2: "b"} and files["gone.txt"].new == {}
    assert sorted(files["edit.py"].new) == list(range(7, 14))
    assert files["edit.py"].new[10] == "x10 = 100" and files["edit.py"].old[10] == "x10 = 10"
    assert files["new näme.txt"].new[15] == "line fifteen"
    assert 1 not in files["new näme.txt"].new  # outside the hunk's context
    assert files["blob.bin"].new == {} == files["blob.bin"].old


def test_the_answer_is_found_in_what_agents_say() -> None:
    """issue 15 §3: the answer as the whole text, in a ```json block, or as the last object
    with "comments" after prose (an agent quoting the shape first); else a clear error."""
    from parallel_agents.sessions.reviewer import FileLines, ReviewAnswerError, check_answer

    files = {"a.py": FileLines(new={3: "x = 1"}, old={3: "x = 0"})}
    good = '{"comments": [{"path": "a.py", "line": 3, "body": "why?"}]}'
    for text in (
        good,
        f"Here it is:\n```json\n{good}\n```\nDone.",
        f'The shape is {{"comments": []}}. My answer: {good} Thanks.',
    ):
        comments, _ = check_answer([text], files)
        assert comments == [
            {"path": "a.py", "line": 3, "side": "new", "code": "x = 1", "body": "why?"}
        ], text
    for text, words in (
        ("", "it said nothing"),
        ("[1, 2]", "is not JSON of the form"),
        ('{"comments": "none"}', "is not JSON of the form"),
        ('{"comments": [{"path": "a.py", "line": true, "body": "b"}]}', "no line number"),
        ('{"comments": [{"path": "a.py", "line": 3, "body": "  "}]}', "has no body"),
        ('{"comments": [{"path": "a.py", "line": 4, "side": "old", "body": "b"}]}',
         "line 4 of a.py (old side) is not in the diff (it shows lines 3)"),
    ):
        with pytest.raises(ReviewAnswerError, match="nothing was stored") as e:
            check_answer([text], files)
        assert words in e.value.message, (text, e.value.message)
    many = json.dumps({"comments": [{"path": "a.py", "line": 3, "body": "b"}] * 201})
    with pytest.raises(ReviewAnswerError, match="more than 200"):
        check_answer([many], files)


BIG_AUTHOR = """
from pathlib import Path
Path("big.txt").write_text("".join(f"line {i:06d} of a long generated file\\n" for i in range(4000)))
print("wrote big.txt")
"""

# Too big a diff for the prompt: the prompt names the git command, which works in the
# reviewer's own worktree (the author's commits are in the same repository).
BIG_REVIEWER = """
import json, os, re, subprocess
prompt = os.environ.get("PA_PROMPT") or open(os.environ["PA_PROMPT_FILE"]).read()
assert "line 003999" not in prompt
cmd = re.search(r"^  (git diff \\S+ \\S+)$", prompt, re.M).group(1).split()
diff = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
assert "+line 003999 of a long generated file" in diff
print(json.dumps({"comments": [{"path": "big.txt", "line": 4000, "body": "Generate it."}]}))
"""


def test_a_diff_too_big_for_the_prompt_is_read_in_the_worktree(tmp_path: Path) -> None:
    """issue 15 §3: a diff over the prompt's share is named by a git command that prints it
    in the reviewer's worktree; comments on its far end are checked like any other."""
    repo = make_repo(tmp_path / "proj")
    s = new_json("write a big file", "--cmd", _script(tmp_path, "big", BIG_AUTHOR), cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    p = _review(sid, _script(tmp_path, "bigrev", BIG_REVIEWER), "--json")
    assert p.returncode == 0, p.stderr
    [c] = json.loads(p.stdout)["comments"]
    assert (c["path"], c["line"], c["code"]) == (
        "big.txt", 4000, "line 003999 of a long generated file"
    )

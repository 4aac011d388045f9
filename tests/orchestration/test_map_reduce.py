"""Issue 15 §4: map over many items, then reduce, through the real `pa` (a server runs) and
command agents that edit the repository and write outcome records."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo, pa

PY = sys.executable

MAPPER = r"""
import json, os, re, sys
prompt = os.environ["PA_PROMPT"]
n, mode = re.search(r"task (\d+) mode (\w+)", prompt).groups()
out = os.environ["PA_OUTCOME"]

def outcome(status, summary):
    with open(out, "w") as f:
        json.dump({"status": status, "summary": summary}, f)

def own_file():
    os.makedirs("files", exist_ok=True)
    with open(f"files/f{n}.txt", "w") as f:
        f.write(f"item {n}\n")

if mode == "edit":
    own_file()
    outcome("success", f"wrote files/f{n}.txt")
elif mode == "fail":
    own_file()  # half-done work: a failure is never merged
    outcome("failure", f"could not finish item {n}")
elif mode == "crash":
    own_file()
    sys.exit(3)
elif mode == "same":
    text = open("README.md").read().replace("teh", "the")
    open("README.md", "w").write(text)
    outcome("success", "fixed the typo in README.md")
elif mode == "norecord":
    own_file()
elif mode == "bad":
    own_file()
    open(out, "w").write("all good!")
elif mode == "skip":
    outcome("skip", "nothing to do here")
elif mode == "conflict":
    open("conflict.txt", "w").write(f"version {n}\n")
    outcome("success", f"wrote version {n}")
print("mapper", n, mode, "done")
"""

REDUCER = r"""
import json, os
open("REDUCED.md", "w").write("reduced\n")
with open(os.environ["PA_OUTCOME"], "w") as f:
    json.dump({"status": "success", "summary": "integrated everything"}, f)
print("reducer done")
"""

MODES = (
    ["edit"] * 10
    + ["fail", "fail", "crash", "same", "same", "norecord", "bad", "skip", "conflict", "conflict"]
)


def _json(*args: str, cwd: Path | None = None, input: str | None = None) -> Any:
    p = pa(*args, "--json", cwd=cwd, input=input, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def _until(what: str, pred: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.mark.usefixtures("server_mode")
def test_map_twenty_items_then_reduce_to_one_branch(tmp_path: Path) -> None:
    """issue 15 §4: `pa map` starts 20 sessions under one group; each outcome is the
    mapper's record (or derived, and said so); `pa reduce` merges every successful
    mapper's change into one branch (the two identical fixes merge cleanly, the second
    of two conflicting ones is left out), lists the rest in the reducer's prompt, and the
    report lists all 20."""
    repo = make_repo(tmp_path / "repo", {"README.md": "teh demo\n", "src/app.py": "x = 1\n"})
    mapper = tmp_path / "mapper.py"
    mapper.write_text(MAPPER)
    reducer = tmp_path / "reducer.py"
    reducer.write_text(REDUCER)
    items = "".join(json.dumps({"n": i, "mode": m}) + "\n" for i, m in enumerate(MODES, 1))

    rep = _json(
        "map", "--template", "task {n} mode {mode}", "--items", "-", "--name", "fix20",
        "--cmd", f"{PY} {mapper}", cwd=repo, input=items,
    )
    assert rep["group"]["kind"] == "map" and rep["group"]["name"] == "fix20"
    assert [i["key"] for i in rep["items"]] == [str(i) for i in range(1, 21)]
    assert all(i["session"] for i in rep["items"]), "one session per item"
    sids = [i["session"] for i in rep["items"]]
    assert len(set(sids)) == 20
    # Every session belongs to its task, by its options too (a crash cannot orphan it).
    shown = _json("show", sids[0])
    assert shown["options"]["group"] == {"id": rep["group"]["id"], "key": "1", "kind": "map", "name": "fix20"}
    assert "PA_OUTCOME" in shown["turns"][0]["prompt"], "pa says how to report the outcome"

    pa("wait", "--timeout", "240", *sids, timeout=300)

    def finished() -> dict[str, Any] | None:
        r = _json("map", "show", "fix20")
        done = r["group"]["state"] == "done"
        # Checkpoints come right after a turn's end (the server defers them a moment).
        diffs = all(i["diff"] for i in r["items"] if i["state"] == "done" and i["key"] != "18")
        return r if done and diffs else None

    rep = _until("every item to end", finished)
    by = {i["key"]: i for i in rep["items"]}
    assert len(by) == 20
    for k in [*map(str, range(1, 11)), "14", "15", "19", "20"]:
        assert by[k]["state"] == "done", by[k]
        assert by[k]["outcome"]["status"] == "success" and by[k]["outcome"]["source"] == "record"
    for k in ("11", "12"):
        assert by[k]["outcome"]["status"] == "failure" and by[k]["outcome"]["source"] == "record"
        assert by[k]["outcome"]["summary"] == f"could not finish item {k}"
    assert by["13"]["state"] == "failed" and by["13"]["outcome"]["source"] == "derived"
    assert by["13"]["outcome"]["status"] == "failure"
    assert "no outcome record" in by["16"]["outcome"]["note"]
    assert by["16"]["outcome"]["status"] == "success" and by["16"]["outcome"]["source"] == "derived"
    assert "malformed" in by["17"]["outcome"]["note"]
    assert by["18"]["outcome"]["status"] == "skip"
    assert by["1"]["diff"] == {"files": 1, "added": 1, "deleted": 0}
    assert rep["counts"]["items"] == 20
    table = pa("map", "show", "fix20")
    assert table.returncode == 0, table.stderr
    assert len([ln for ln in table.stdout.splitlines() if "\t" in ln]) == 21  # header + 20

    res = _json("reduce", "fix20", "--cmd", f"{PY} {reducer}", "--prompt", "Keep it short.", cwd=repo)
    keys = lambda name: sorted((e["key"] for e in res[name]), key=int)  # noqa: E731
    assert keys("merged") == [*map(str, range(1, 11)), "14", "16", "17", "19"]
    assert keys("identical") == ["15"], "the second identical fix merged to the same tree"
    assert keys("conflicts") == ["20"] and res["conflicts"][0]["paths"] == ["conflict.txt"]
    assert keys("not_merged") == ["11", "12", "13", "18"]

    rs = res["session"]
    assert rs["base_ref"] == "main"
    pa("wait", "--timeout", "120", rs["id"], timeout=180)
    branch = rs["branch"]
    for n in [*range(1, 11), 16, 17]:
        assert git(repo, "show", f"{branch}:files/f{n}.txt") == f"item {n}\n"
    for n in (11, 12, 13):
        assert f"files/f{n}.txt" not in git(repo, "ls-tree", "-r", "--name-only", branch)
    assert git(repo, "show", f"{branch}:README.md") == "the demo\n"
    assert git(repo, "show", f"{branch}:conflict.txt") == "version 19\n"
    assert git(repo, "rev-parse", "main").strip() == rep["group"]["spec"]["base_commit"]

    prompt = _json("show", rs["id"])["turns"][0]["prompt"]
    failed_part = prompt.split("did not succeed")[1]
    for k in ("11", "12", "13", "18"):
        assert f"- item {k}:" in failed_part
    assert "could not finish item 11" in failed_part
    conflict_part = prompt.split("conflict with the merged work")[1].split("did not succeed")[0]
    assert "- item 20:" in conflict_part and "conflict.txt" in conflict_part
    assert "Dedupe" in prompt and "Summarise" in prompt and "Keep it short." in prompt

    red = _until(
        "the reducer's outcome",
        lambda: (r := _json("map", "show", res["group"]["name"]))["group"]["state"] == "done" and r,
    )
    [task] = red["items"]
    assert task["outcome"]["status"] == "success" and task["outcome"]["summary"] == "integrated everything"
    again = _json("map", "show", "fix20")
    assert [r["name"] for r in again["reduces"]] == [res["group"]["name"]]
    # The reducer's diff is everything the reduce brings to main.
    stat = pa("diff", rs["id"], "--name-only")
    assert "files/f1.txt" in stat.stdout and "REDUCED.md" in stat.stdout

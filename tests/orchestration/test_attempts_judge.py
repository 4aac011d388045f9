"""Issue 15 §2: the judge. `pa compare GROUP --judge AGENT` runs one more agent over the
attempts' diffs and check output and asks for a ranking as JSON; the answer is validated
(every attempt once, scores 0..10, a reason each), shown in compare and stored with the
group. A malformed answer or a timeout is a clear error, not a ranking.

Real git, the real `pa` CLI and `command` agents as judges.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.sessions.judge import parse_ranking
from parallel_agents.store import Store
from tests.conftest import make_repo, pa
from tests.orchestration.test_attempts import agent, ok, refused, settle, start

VALID = {
    "ranking": [
        {"attempt": "2", "score": 8, "reason": "clean and complete"},
        {"attempt": "1", "score": 4.5, "reason": "works, but untidy"},
    ]
}


def judge_script(tmp_path: Path, answer: str, *, keep_prompt: bool = True) -> str:
    body = "import os, pathlib, sys\n"
    if keep_prompt:
        body += f"pathlib.Path({str(tmp_path / 'judge-prompt.txt')!r}).write_text(os.environ['PA_PROMPT'])\n"
    body += f"pathlib.Path('scribble.txt').write_text('judge was here')\nprint({answer!r})\n"
    return agent(tmp_path, body, "judge.py")


def two_attempts(tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path, 2)
    return d, settle(d)


def test_a_valid_ranking_is_stored_and_shown(tmp_path: Path) -> None:
    """issue 15 §2: the judge sees every attempt's diff and check, its JSON ranking is
    validated and stored with the group, compare shows each attempt's score, and the
    judge's own worktree is discarded."""
    d, ids = two_attempts(tmp_path)
    name = d["group"]["name"]
    assert pa("check", ids[0], "--check", "echo all-green").returncode == 0
    cmd = judge_script(tmp_path, "Here is my verdict:\n" + json.dumps(VALID))
    c = ok("compare", name, "--judge", "command", "--cmd", cmd, "--timeout", "60", "--json")
    j = c["judge"]
    assert j["state"] == "done" and j["agent"] == "command"
    assert [(r["attempt"], r["rank"], r["score"]) for r in j["ranking"]] == [
        ("2", 1, 8),
        ("1", 2, 4.5),
    ]
    rows = {r["attempt"]: r for r in c["attempts"]}
    assert (rows["2"]["score"], rows["2"]["rank"], rows["2"]["reason"]) == (8, 1, "clean and complete")
    assert rows["1"]["score"] == 4.5
    prompt = (tmp_path / "judge-prompt.txt").read_text()
    for sid in ids:  # each attempt's diff travelled in the prompt
        assert f"+{sid}" in prompt
    assert "echo all-green" in prompt and "all-green" in prompt and "solve it" in prompt
    judge_session = j["session"]
    shown = json.loads(pa("show", judge_session, "--json").stdout)
    assert shown["status"] == "discarded"  # its worktree is gone, archived
    group = {"id": d["group"]["id"], "key": j["key"], "kind": "attempts", "name": name}
    assert shown["options"]["group"] == group  # listed under its group's sidebar heading
    st = Store(Path(os.environ["PA_HOME"]))
    assert st.group(d["group"]["id"]).spec["judge"]["ranking"][0]["attempt"] == "2"
    st.close()
    text = ok("compare", name)
    assert "clean and complete" in text and "attempt 2 (8/10)" in text


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("attempt 2 looks best to me", 'no JSON object with a "ranking"'),
        (json.dumps({"ranking": [VALID["ranking"][0]]}), "attempt 1 not ranked"),
        (json.dumps({"ranking": [VALID["ranking"][0]] * 2}), "attempt 2 is ranked twice"),
    ],
)
def test_a_malformed_answer_is_an_error_not_a_ranking(
    tmp_path: Path, answer: str, words: str
) -> None:
    """issue 15 §2: a judge's answer that is not a full, valid ranking is refused with a
    clear error; no score is shown."""
    d, _ = two_attempts(tmp_path)
    name = d["group"]["name"]
    cmd = judge_script(tmp_path, answer, keep_prompt=False)
    err = refused("compare", name, "--judge", "command", "--cmd", cmd, code=1)
    assert "not a valid ranking" in err and words in err, err
    c = ok("compare", name, "--json")
    assert c["judge"]["state"] == "failed" and "ranking" not in c["judge"]
    assert "judge (command): no ranking: the judge's answer is not a valid ranking" in ok("compare", name)
    assert all(r["score"] is None for r in c["attempts"])


def test_a_judge_that_never_answers_times_out(tmp_path: Path) -> None:
    """issue 15 §2: a judge that does not answer within --timeout is stopped, and that is
    an error, not a ranking."""
    d, _ = two_attempts(tmp_path)
    name = d["group"]["name"]
    body = (
        "import time\n"
        "deadline = time.monotonic() + 120\n"
        "while time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
    )
    cmd = agent(tmp_path, body, "silent.py")
    err = refused("compare", name, "--judge", "command", "--cmd", cmd, "--timeout", "1", code=1)
    assert "timed out" in err, err
    c = ok("compare", name, "--json")
    assert c["judge"]["state"] == "failed" and "timed out" in c["judge"]["error"]
    assert json.loads(pa("show", c["judge"]["session"], "--json").stdout)["status"] == "discarded"


def test_judging_unfinished_work_or_twice_at_once_is_refused(tmp_path: Path) -> None:
    """issue 15 §2: a judge reads finished attempts only."""
    repo = make_repo(tmp_path / "proj")
    gate = tmp_path / "gate"
    body = (
        "import pathlib, time\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
    )
    d = ok("new", "x", "--attempts", "2", "--cmd", agent(tmp_path, body), "--json", cwd=repo)
    err = refused("compare", d["group"]["name"], "--judge", "command", "--cmd", "true", code=1)
    assert "still working" in err
    gate.write_text("go")
    settle(d)


@pytest.mark.parametrize(
    ("ranking", "words"),
    [
        ([{"attempt": "1", "score": 11, "reason": "r"}], "not between 0 and 10"),
        ([{"attempt": "1", "score": True, "reason": "r"}], "is not a number"),
        ([{"attempt": "3", "score": 1, "reason": "r"}], "names attempt '3'"),
        ([{"attempt": 1, "score": 1, "reason": " "}], "has no reason"),
        ("first", "not a non-empty list"),
    ],
)
def test_parse_ranking_refuses(ranking: Any, words: str) -> None:
    """issue 15 §2: the validation of a judge's answer, case by case."""
    with pytest.raises(ValueError, match=words):
        parse_ranking(json.dumps({"ranking": ranking}), ["1"])


def test_parse_ranking_takes_the_last_answer_in_a_fence() -> None:
    """issue 15 §2: the answer may sit in prose or a ```json fence; the last object wins."""
    text = (
        'draft: {"ranking": [{"attempt": "1", "score": 1, "reason": "x"}]}\n'
        "final:\n```json\n"
        + json.dumps({"ranking": [{"attempt": 1, "score": 9, "reason": "best"}]})
        + "\n```\n"
    )
    assert parse_ranking(text, ["1"]) == [{"attempt": "1", "rank": 1, "score": 9, "reason": "best"}]

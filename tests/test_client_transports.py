"""One `Client`, two transports: the server app called in-process and a running server
answer every verb with the same JSON and the same errors (issue 13: each verb is
written once, in `client/_client.py`)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.client import Client, ensure_server
from parallel_agents.errors import PAError
from parallel_agents.server import daemon
from tests.conftest import git, make_repo
from tests.server.conftest import kill_agents, wait_for

PY = sys.executable

AGENT = """\
import sys
from pathlib import Path

prompt = sys.stdin.read()
n = len(list(Path('.').glob('note*.txt'))) + 1
Path(f'note{n}.txt').write_text(prompt + '\\n')
Path('big.txt').write_text(''.join(f'line {i}\\n' for i in range(200_000)))
print('wrote', f'note{n}.txt', flush=True)
"""


@pytest.fixture
def both(pa_home: Path) -> Iterator[tuple[Client, Client]]:
    """(in-process, through the running server) clients of the same PA_HOME."""
    local = Client.in_process()
    remote = ensure_server(pa_home)
    try:
        yield local, remote
    finally:
        daemon.stop(pa_home)
        kill_agents(pa_home)


def _idle(c: Client, sid: str, repo: Path) -> dict[str, Any]:
    """The session once its turn ended and was checkpointed (the server's loop writes the
    checkpoint just after the status: until then the two reads could differ)."""

    def done() -> dict[str, Any] | None:
        c.refresh()
        s = c.session(sid)
        if s["status"] in ("queued", "starting", "running"):
            return None
        ref = f"refs/pa/sessions/{sid}/turns/{len(s['turns'])}"
        return s if git(repo, "for-each-ref", ref).strip() else None

    s: dict[str, Any] = wait_for(done, 60, f"session {sid} to finish")
    return s


def _live(d: dict[str, Any]) -> dict[str, Any]:
    """A diff of the live worktree without its ``target``: each read snapshots the
    worktree anew, and a snapshot commit's hash includes the second it was made."""
    return {k: v for k, v in d.items() if k != "target"}


def _same(local: Client, remote: Client, sid: str) -> None:
    """Every read verb gives the same JSON both ways."""
    assert local.session(sid) == remote.session(sid)
    assert local.get_session(sid) == remote.get_session(sid)
    assert local.sessions(all=True) == remote.sessions(all=True)
    assert local.sessions() == remote.sessions()
    assert local.events(sid) == remote.events(sid)
    assert local.all_events() == remote.all_events()
    assert local.repo_ls() == remote.repo_ls()
    assert _live(local.diff_json(sid)) == _live(remote.diff_json(sid))
    assert local.diff_json(sid, 1) == remote.diff_json(sid, 1)
    for kw in ({}, {"stat": True}, {"name_only": True}):
        assert "".join(local.diff_text(sid, **kw)) == "".join(remote.diff_text(sid, **kw))
    assert local.conflicts() == remote.conflicts()
    assert local.conflicts("demo") == remote.conflicts("demo")


def _error(call: Any) -> tuple[type[PAError], str, str | None, int]:
    with pytest.raises(PAError) as e:
        call()
    return type(e.value), e.value.message, e.value.hint, e.value.exit_code


def test_every_verb_gives_the_same_json_in_process_and_through_the_server(
    both: tuple[Client, Client], tmp_path: Path
) -> None:
    local, remote = both
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    cmd = [PY, str(agent)]

    added = local.repo_add(repo, name="demo")
    assert remote.repo_ls() == local.repo_ls() == [added]

    # Sessions made each way, then read each way.
    a = local.new("from in-process", repo="demo", cmd=cmd, title="a")
    b = remote.new("through the server", repo=str(repo), cmd=cmd, title="b")
    for s in (a, b):
        assert _idle(local, s["id"], repo)["status"] == "idle"
        _same(local, remote, s["id"])
    assert "note1.txt" in {f["path"] for f in local.diff_json(a["id"])["files"]}

    # Verbs that change a session, some each way; afterwards both read the same.
    sent = local.send(a["id"], "again")
    assert sent["id"] == a["id"] and sent["turns"] == 2
    assert len(_idle(remote, a["id"], repo)["turns"]) == 2
    _same(local, remote, a["id"])
    rolled = remote.rollback(a["id"], 1)
    assert rolled["session"]["id"] == a["id"] and rolled["undo_ref"]
    _same(local, remote, a["id"])
    checks = [c.check(a["id"], f"{PY} -c 'print(1)'") for c in (local, remote)]
    assert [c["ok"] for c in checks] == [True, True]
    assert checks[0].keys() == checks[1].keys()
    _same(local, remote, a["id"])
    stopped = local.stop(b["id"])
    assert stopped["id"] == b["id"]
    _same(local, remote, b["id"])
    gone = remote.discard(b["id"])
    assert gone["status"] == "discarded" and gone["archive"]["ref"]
    _same(local, remote, b["id"])
    back = local.restore(b["id"])
    assert back["status"] != "discarded" and back["notes"] == []
    _same(local, remote, b["id"])
    read = [c.mark_read(a["id"]) for c in (local, remote)]  # each write moves updated_at
    assert [r["unread"] for r in read] == [False, False] and read[0].keys() == read[1].keys()
    _same(local, remote, a["id"])


def test_errors_are_the_same_class_message_hint_and_exit_code_both_ways(
    both: tuple[Client, Client], tmp_path: Path
) -> None:
    local, remote = both
    repo = make_repo(tmp_path / "repo")
    local.repo_add(repo, name="demo")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    s = local.new("x", repo="demo", cmd=[PY, str(agent)])
    _idle(local, s["id"], repo)

    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
    calls = {
        "unknown session": lambda c: c.session("nope"),
        "unknown session (diff)": lambda c: "".join(c.diff_text("nope")),
        "unknown repo": lambda c: c.repo_rm("other"),
        "no such turn": lambda c: c.diff_json(s["id"], 9),
        "turn 0 (the route's validation)": lambda c: c.rollback(s["id"], 0),
        "already registered": lambda c: c.repo_add(repo),
        "in use": lambda c: c.repo_rm("demo"),
        # A refusal that is not bad input (gh missing or not logged in): exit 1 both ways,
        # not the 2 of a usage error (the server answers 400 for both).
        "pull request without gh": lambda c: c.pr(s["id"]),  # origin is set below
    }
    for what, call in calls.items():
        got = _error(lambda call=call: call(local))
        assert got == _error(lambda call=call: call(remote)), what
        if what == "pull request without gh":
            assert got[0] is PAError and got[3] == 1, got
        if what.startswith("unknown session"):
            assert got[0].__name__ == "NotFound" and "nope" in got[1], got


def test_a_reader_that_stops_early_releases_an_in_process_stream(
    both: tuple[Client, Client], tmp_path: Path
) -> None:
    local, _ = both
    repo = make_repo(tmp_path / "repo")
    local.repo_add(repo, name="demo")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    s = local.new("x", repo="demo", cmd=[PY, str(agent)])
    _idle(local, s["id"], repo)
    # The patch (200,000 lines) is far more than the in-process queue holds: the app
    # waits for the reader, and a reader that stops must not leave it waiting for ever.
    chunks = local.diff_text(s["id"])
    first = next(iter(chunks))
    assert first.startswith("diff --git")
    chunks.close()

    def released() -> bool:
        return not [t for t in threading.enumerate() if t.name == "pa-in-process"]

    wait_for(released, 30, "the in-process request to end")
    assert local.session(s["id"])["id"] == s["id"]


def test_the_diff_note_reaches_the_caller_both_ways(
    both: tuple[Client, Client], tmp_path: Path
) -> None:
    """What a diff shows when it is not the worktree (here: a discarded session's archive)
    is said apart from the diff, as `pa diff` prints it on stderr."""
    local, remote = both
    repo = make_repo(tmp_path / "repo")
    local.repo_add(repo, name="demo")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    s = local.new("x", repo="demo", cmd=[PY, str(agent)])
    _idle(local, s["id"], repo)
    local.discard(s["id"])
    notes: dict[str, list[str]] = {"local": [], "remote": []}
    paths = {
        name: "".join(c.diff_text(s["id"], name_only=True, note=notes[name].append))
        for name, c in (("local", local), ("remote", remote))
    }
    assert paths["local"] == paths["remote"] and "note1.txt" in paths["local"]
    assert notes["local"] == notes["remote"] and "is discarded" in notes["local"][0]

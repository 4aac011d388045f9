"""The state database and PA_HOME: private modes, damaged or newer files, backups, and
state left without a database (issue 11 H, issue 20 §3)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from parallel_agents import store as store_mod
from parallel_agents.sessions.orchestrator import App
from parallel_agents.store import MIGRATIONS, Store
from tests.reliability.helpers import git, pa, wait_until


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def finished(app: App, sid: str) -> None:
    def done() -> bool:
        app.refresh()
        return not app.store.session(sid).status.active

    wait_until(done, timeout=60, what=f"session {sid} to finish")


@pytest.fixture
def app(repo: Path) -> App:
    a = App.open()
    a.add_repo(repo, name="demo")
    yield a  # type: ignore[misc]
    a.close()


def _one_session(repo: Path) -> str:
    """A finished session made through the real CLI; its id."""
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    p = pa("new", "hello", "--repo", "demo", "--cmd", "true", "--json")
    assert p.returncode == 0, p.stderr
    sid = str(json.loads(p.stdout)["id"])
    wait_until(
        lambda: json.loads(pa("show", sid, "--json").stdout)["status"] == "idle",
        timeout=60,
        what="the session to finish",
    )
    return sid


def test_home_database_and_session_output_are_private(app: App, pa_home: Path) -> None:
    """issue 11 H: PA_HOME is 0700; pa.db (with -wal/-shm), session folders and the
    per-turn files (output, pid, exit) are readable by the owner only."""
    s = app.new_session("hello", repo="demo", cmd=["sh", "-c", "echo secret; echo oops >&2"])
    finished(app, s.id)
    assert mode(pa_home) == 0o700
    for name in ("pa.db", "pa.db-wal", "pa.db-shm"):
        if (pa_home / name).exists():
            assert mode(pa_home / name) == 0o600, name
    turn = pa_home / "sessions" / s.id / "turns" / "1"
    assert mode(pa_home / "sessions" / s.id) == 0o700
    assert mode(turn) == 0o700
    for name in ("stdout", "stderr", "exit", "pid", "wrapper_pid", "wrapper.log"):
        assert mode(turn / name) == 0o600, name
    assert "secret" in (turn / "stdout").read_text()


def test_an_old_open_home_is_tightened_on_open(tmp_path: Path) -> None:
    """issue 11 H: a PA_HOME an older pa made 0755 with a 0644 pa.db is made 0700/0600."""
    home = tmp_path / "old-home"
    Store(home).close()
    os.chmod(home, 0o755)
    os.chmod(home / "pa.db", 0o644)
    Store(home).close()
    assert mode(home) == 0o700
    assert mode(home / "pa.db") == 0o600


@pytest.mark.parametrize("damage", ["truncate", "overwrite_header"])
def test_damaged_database_is_a_clear_error_and_doctor_reports_it(
    repo: Path, pa_home: Path, damage: str
) -> None:
    """issue 20 §3: a damaged pa.db (truncated to 3000 bytes, or a few bytes of its header
    overwritten) gives `error:` naming the file and how to recover (with the backup), not
    a sqlite3 traceback; `pa doctor` reports it instead of crashing."""
    _one_session(repo)
    db = pa_home / "pa.db"
    assert (pa_home / "backups").is_dir() and store_mod.newest_backup(pa_home) is not None
    if damage == "truncate":
        os.truncate(db, 3000)
    else:
        with open(db, "r+b") as f:
            f.write(b"not sqlite at all")
    p = pa("ls")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"error: the state database {db} is damaged" in p.stderr
    assert "hint:" in p.stderr and str(store_mod.newest_backup(pa_home)) in p.stderr
    d = pa("doctor")
    assert d.returncode == 1 and "Traceback" not in d.stderr, d.stderr
    assert "database" in d.stdout and "damaged" in d.stdout and "to recover" in d.stdout
    j = pa("doctor", "--json")
    assert j.returncode == 1
    report = json.loads(j.stdout)
    assert [f["kind"] for f in report["findings"]] == ["database"]


def test_the_advertised_backup_restores_the_sessions(repo: Path, pa_home: Path) -> None:
    """issue 20 §3: "restore the backup" is real advice: after the hint's steps, pa ls
    shows the session again."""
    sid = _one_session(repo)
    db = pa_home / "pa.db"
    backup = store_mod.newest_backup(pa_home)
    assert backup is not None
    os.truncate(db, 3000)
    for name in ("pa.db", "pa.db-wal", "pa.db-shm"):
        if (pa_home / name).exists():
            os.replace(pa_home / name, pa_home / f"{name}.damaged")
    db.write_bytes(backup.read_bytes())
    p = pa("ls", "--json")
    assert p.returncode == 0, p.stderr
    assert [s["id"] for s in json.loads(p.stdout)] == [sid]


def test_database_of_a_newer_pa_is_refused_before_reading_or_writing(
    repo: Path, pa_home: Path
) -> None:
    """issue 20 §3: a pa.db with a migration this pa does not know (and a renamed column)
    is refused with "written by a newer pa: upgrade", and left byte for byte unchanged."""
    _one_session(repo)
    db = pa_home / "pa.db"
    con = sqlite3.connect(db)
    con.execute("INSERT INTO migrations VALUES ('999_future', 0)")
    con.execute("ALTER TABLE sessions RENAME COLUMN title TO name")
    con.commit()
    con.close()
    before = db.read_bytes()
    p = pa("ls")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "written by a newer pa" in p.stderr and "999_future" in p.stderr
    assert "upgrade pa" in p.stderr
    d = pa("doctor")
    assert d.returncode == 1 and "Traceback" not in d.stderr, d.stderr
    assert "newer pa" in d.stdout
    with pytest.raises(store_mod.DatabaseTooNew):
        Store(pa_home)
    assert db.read_bytes() == before


def test_a_backup_is_taken_before_a_migration(tmp_path: Path) -> None:
    """issue 20 §3: before a migration runs on an existing pa.db, SQLite's online backup
    copies it to $PA_HOME/backups/pa-before-<migration>.db (the last state the older pa
    could read)."""
    home = tmp_path / "h"
    st = Store(home)
    st.add_repo("r", "/nonexistent/r", None)
    last = MIGRATIONS[-1][0]
    # As an older pa left it: the newest migration not applied yet (undo what it did).
    if last == "004_repo_uid":
        st.db.execute("ALTER TABLE repos DROP COLUMN uid")
    elif last == "005_events_raw_span":
        st.db.execute("ALTER TABLE events DROP COLUMN raw_at")
        st.db.execute("ALTER TABLE events DROP COLUMN raw_len")
    elif last == "006_list_indexes":
        for index in ("sessions_created", "sessions_repo", "events_kind", "repos_uid"):
            st.db.execute(f"DROP INDEX {index}")
    elif last == "007_groups":
        st.db.execute("DROP TABLE group_tasks")
        st.db.execute("DROP TABLE groups")
    elif last == "008_review_comments":
        st.db.execute("DROP TABLE review_comments")
    elif last == "009_ports":
        st.db.execute("DROP TABLE ports")
    elif last == "010_routines":
        st.db.execute("DROP TABLE routine_runs")
        st.db.execute("DROP TABLE routines")
    elif last == "011_routine_events":
        st.db.execute("DROP INDEX routine_runs_event")
        st.db.execute("ALTER TABLE routine_runs DROP COLUMN merge")
        st.db.execute("ALTER TABLE routine_runs DROP COLUMN event")
        st.db.execute("DROP TABLE routine_watch")
    elif last == "012_inbox":
        st.db.execute("DROP INDEX routine_runs_session")
        st.db.execute("ALTER TABLE routine_runs DROP COLUMN read_at")
    elif last == "013_routine_api":
        st.db.execute("DROP TABLE routine_calls")
        st.db.execute("DROP TABLE routine_tokens")
    else:
        raise AssertionError(f"teach this test to undo migration {last}")
    st.db.execute("DELETE FROM migrations WHERE name = ?", (last,))
    st.close()
    Store(home).close()
    copy = home / "backups" / f"pa-before-{last}.db"
    assert copy.is_file() and mode(copy) == 0o600
    con = sqlite3.connect(copy)
    assert {r[0] for r in con.execute("SELECT name FROM migrations")} == {
        n for n, _ in MIGRATIONS[:-1]
    }
    assert [r[0] for r in con.execute("SELECT name FROM repos")] == ["r"]
    con.close()


def test_daily_backup_is_taken_once_a_day(app: App, pa_home: Path) -> None:
    """issue 20 §3: once a session exists, opening the store keeps one backup a day."""
    s = app.new_session("hello", repo="demo", cmd=["true"])
    finished(app, s.id)
    Store(pa_home).close()
    daily = sorted((pa_home / "backups").glob("pa-daily-*.db"))
    assert len(daily) == 1
    con = sqlite3.connect(daily[0])
    assert [r[0] for r in con.execute("SELECT id FROM sessions")] == [s.id]
    con.close()
    first = daily[0].stat().st_mtime_ns
    Store(pa_home).close()
    assert daily[0].stat().st_mtime_ns == first  # not again the same day


def test_empty_database_with_state_is_reported_and_nothing_is_removed(
    repo: Path, pa_home: Path
) -> None:
    """issue 20 §3: pa.db truncated to 0 bytes while session folders, worktrees and
    branches remain: `pa doctor` says "state without a database: N session folders,
    M worktrees, K refs" with what to do, and --repair (after the repo is registered
    again) removes none of the session's worktree or branch."""
    sid = _one_session(repo)
    wt = next((pa_home / "worktrees" / "demo").glob(sid))
    branch = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/pa/").strip()
    os.truncate(pa_home / "pa.db", 0)
    p = pa("doctor")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "state without a database: 1 session folder(s), 1 worktree(s), 2 ref(s)" in p.stdout
    assert "to recover" in p.stdout and "backups" in p.stdout
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    r = pa("doctor", "--repair", "--json")
    kinds = [f["kind"] for f in json.loads(r.stdout)["findings"]]
    assert "state_without_database" in kinds and r.returncode == 1
    assert wt.is_dir()
    assert git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/pa/").strip() == (
        branch
    )



def test_folders_of_sessions_removed_with_their_repo_are_not_lost_state(
    repo: Path, pa_home: Path
) -> None:
    """issue 20 §3: `pa repo rm` deletes the rows of a repo's ended sessions and leaves
    their output folders; with no worktree or branch left they are only reported for
    information and do not stop `pa doctor` from being happy."""
    sid = _one_session(repo)
    assert pa("discard", sid).returncode == 0
    assert pa("repo", "rm", "demo").returncode == 0
    assert (pa_home / "sessions" / sid).is_dir()
    p = pa("doctor", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    found = json.loads(p.stdout)["findings"]
    assert [(f["kind"], f["problem"]) for f in found] == [("state_without_database", False)]


def test_doctor_rebuild_recreates_sessions_from_folders_worktrees_and_refs(
    repo: Path, pa_home: Path
) -> None:
    """issue 20 §3 (bonus): after pa.db was emptied, `pa doctor --rebuild` re-creates the
    session (idle, its turns with the recorded prompts, its checkpoints) from its folder,
    worktree and refs; the session then takes follow-ups again."""
    sid = _one_session(repo)
    assert pa("send", sid, "second prompt").returncode == 0
    assert pa("wait", sid, "--timeout", "60").returncode == 0
    os.truncate(pa_home / "pa.db", 0)
    p = pa("doctor", "--rebuild", "--json")
    assert "Traceback" not in p.stderr, p.stderr
    report = json.loads(p.stdout)
    assert p.returncode == 0, report
    rebuilt = [f for f in report["findings"] if f["kind"] == "rebuilt_session"]
    assert [(f["subject"], f["repaired"]) for f in rebuilt] == [(sid, True)]
    s = json.loads(pa("show", sid, "--json").stdout)
    assert s["status"] == "idle" and s["repo_name"] == "demo" and s["branch"].endswith(sid)
    st = Store(pa_home)
    try:
        assert [(t.n, t.prompt, t.status) for t in st.turns(sid)] == [
            (1, "hello", "done"),
            (2, "second prompt", "done"),
        ]
        assert st.db.execute(
            "SELECT COUNT(*) FROM checkpoints WHERE session_id = ?", (sid,)
        ).fetchone()[0] == 2
    finally:
        st.close()
    assert pa("send", sid, "third").returncode == 0
    assert pa("wait", sid, "--timeout", "60").returncode == 0
    assert json.loads(pa("show", sid, "--json").stdout)["status"] == "idle"

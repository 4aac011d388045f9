"""State store: WAL, migrations, status machine, read-only home."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.config import load_settings, pa_home
from parallel_agents.errors import Conflict, PAError
from parallel_agents.models import Session, Status, check_transition
from parallel_agents.store import MIGRATIONS, Store


def test_home_is_the_test_tmpdir(pa_home: Path) -> None:
    assert load_settings().home == pa_home == pa_home_env()


def pa_home_env() -> Path:
    return pa_home()


def test_wal_busy_timeout_and_migrations(pa_home: Path) -> None:
    st = Store(pa_home)
    assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert st.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert st.applied_migrations() == [name for name, _ in MIGRATIONS]
    st.close()
    # Re-opening applies nothing twice.
    st2 = Store(pa_home)
    assert st2.applied_migrations() == [name for name, _ in MIGRATIONS]


def test_default_home_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PA_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert pa_home() == tmp_path / "xdg" / "parallel-agents"


def _session(st: Store, sid: str = "abcd1234") -> Session:
    repo = st.add_repo("r", "/tmp/r-" + sid, None)
    now = time.time()
    s = Session(
        id=sid,
        title="t",
        repo_id=repo.id,
        repo_name="r",
        branch="pa/t",
        base_ref="main",
        base_commit="0" * 40,
        worktree="/tmp/wt",
        agent="command",
        model=None,
        status=Status.QUEUED,
        agent_session_id=None,
        created_at=now,
        updated_at=now,
    )
    st.insert_session(s)
    return s


def test_transitions_go_through_one_function(pa_home: Path) -> None:
    st = Store(pa_home)
    s = _session(st)
    with pytest.raises(Conflict, match="cannot go from queued to merged"):
        st.set_status(s.id, Status.MERGED)
    st.set_status(s.id, Status.STARTING)
    st.set_status(s.id, Status.RUNNING)
    st.set_status(s.id, Status.IDLE)
    got = st.session(s.id)
    assert got.status == Status.IDLE and got.unread
    kinds = [e.kind for e in st.events(s.id)]
    assert kinds.count("status") == 3 and "attention" in kinds
    with pytest.raises(Conflict):
        check_transition(Status.DISCARDED, Status.RUNNING)


def test_events_have_increasing_ids_and_per_session_seq(pa_home: Path) -> None:
    st = Store(pa_home)
    a = _session(st, "aaaa0001")
    with st.tx() as db:
        st.append_events(db, a.id, 1, [("output", {"text": str(i)}, str(i)) for i in range(5)])
    evs = st.events(a.id)
    assert [e.seq for e in evs] == [1, 2, 3, 4, 5]
    assert [e.id for e in evs] == sorted(e.id for e in evs)
    assert st.events(a.id, after_seq=3)[0].payload == {"text": "3"}


def test_a_transaction_inside_another_is_a_savepoint(pa_home: Path) -> None:
    """issue 14 §3: several sessions' ends share one transaction, each in a nested
    ``tx``: one that fails undoes only its own writes, the others commit together."""
    st = Store(pa_home)
    a = _session(st, "aaaa0002")
    other = Store(pa_home)  # another connection: sees nothing before the commit
    with st.tx():
        with st.tx() as db:
            st.append_events(db, a.id, 1, [("output", {"text": "kept"}, "kept")])
        with contextlib.suppress(RuntimeError), st.tx() as db:
            st.append_events(db, a.id, 1, [("output", {"text": "undone"}, "undone")])
            raise RuntimeError("this session's ingestion failed")
        with st.tx() as db:
            st.append_events(db, a.id, 1, [("output", {"text": "also kept"}, "also kept")])
        assert other.events(a.id) == []
    assert [e.payload["text"] for e in other.events(a.id)] == ["kept", "also kept"]
    other.close()


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[None]:
    """A directory nobody may write to, root included (CI runs as root)."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(0o700)
        return
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_home_is_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    with read_only_dir(ro):
        with pytest.raises(PAError, match="not writable"):
            Store(ro / "home")
        with pytest.raises(PAError, match="not writable"):
            Store(ro)


def test_many_threads_open_the_store_at_once(pa_home: Path) -> None:
    import threading

    errors: list[str] = []

    def open_close() -> None:
        try:
            Store(pa_home).close()
        except Exception as e:  # collected and asserted below
            errors.append(repr(e))

    threads = [threading.Thread(target=open_close) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_settings_are_independent_of_the_defaults() -> None:
    from parallel_agents.config import DEFAULTS

    a = load_settings()
    a.data.setdefault("agents", {}).setdefault("claude", {})["binary"] = "/x/claude"
    a.data["limits"]["max_running"] = 99
    assert DEFAULTS["agents"] == {} and DEFAULTS["limits"]["max_running"] == 8
    assert load_settings().agent_settings("claude") == {}

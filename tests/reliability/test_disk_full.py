"""A full disk during an event write and during a checkpoint: a clear error, nothing
corrupted, and everything completes once space is freed.

A small tmpfs is mounted when we may (root, as in CI); otherwise the event write is
driven into SQLite's "database or disk is full" with ``PRAGMA max_page_count`` and the
git part is skipped.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.errors import PAError
from parallel_agents.git import pool
from parallel_agents.sessions.headless import CHUNK
from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo, output_lines
from tests.reliability.helpers import git, pa, wait_until, write_settings

LINES = 3000


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    try:
        yield r.returncode == 0
    finally:
        if r.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path | None]:
    mnt = tmp_path / "small"
    with _tmpfs(mnt, "3m") as ok:
        yield mnt if ok else None


def _fill(fs: Path) -> Path:
    """Take every free byte of ``fs``; returns the ballast file."""
    ballast = fs / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return ballast


def _chatty(tmp_path: Path) -> list[str]:
    agent = tmp_path / "chatty.py"
    agent.write_text(
        f"import sys\nfor i in range({LINES}):\n    print(f'line {{i}} ' + 'x' * 100)\n"
    )
    return [sys.executable, str(agent)]


def _finished_output(app: App, sid: str) -> None:
    files = app.sup.turn_files(sid, 1)
    wait_until(lambda: files.exit_info() is not None, timeout=60, what="the agent to exit")


@pytest.mark.parametrize(
    "mode",
    [
        "tmpfs",
        "simulated",
    ],
)
def test_event_write_on_a_full_disk(
    tmp_path: Path, small_fs: Path | None, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    if mode == "simulated":
        small_fs = None
    elif small_fs is None:
        pytest.skip("needs a tmpfs mount: run the suite as root (the simulated variant runs instead)")
    repo = make_repo(tmp_path / "repo")
    if small_fs is not None:
        monkeypatch.setenv("PA_HOME", str(small_fs / "home"))
    app = App.open()
    try:
        app.add_repo(repo, name="demo")
        s = app.new_session("talk", repo="demo", cmd=_chatty(tmp_path))
        _finished_output(app, s.id)
        if small_fs is not None:
            ballast = _fill(small_fs)
        else:  # simulated: SQLite may not grow the file any further
            pages = app.store.db.execute("PRAGMA page_count").fetchone()[0]
            app.store.db.execute(f"PRAGMA max_page_count = {pages}")
            # A run of plain lines read in one pass is one event (issue 14 §5): small
            # passes make the rows, not the lines, need more room than is left.
            app.sup.chunk = 2048
        with pytest.raises((PAError, sqlite3.OperationalError)) as err:
            for _ in range(500):
                app.sup.tick()
        app.sup.chunk = CHUNK
        assert "full" in str(err.value).lower() or "space" in str(err.value).lower(), err.value
        # Nothing half-written: the stored events are a prefix, and the offset matches it.
        expected = [f"line {i} " + "x" * 100 for i in range(LINES)]
        got = output_lines(app.store.events(s.id, kinds=["output"]))
        assert got == expected[: len(got)]
        with app.store.tx() as db:
            offset, _ = app.store.turn_progress(db, s.id, 1)
        assert offset == sum(len(t) + 1 for t in got)
        assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if small_fs is not None:
            ballast.unlink()
        else:
            app.store.db.execute("PRAGMA max_page_count = 1073741823")
        wait_until(
            lambda: app.refresh() or not app.store.session(s.id).status.active,
            timeout=60,
            what="the session to finish",
        )
        outs = output_lines(app.store.events(s.id, kinds=["output"]))
        assert outs == expected
        assert app.store.session(s.id).status.value == "idle"
        assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        app.close()


def test_cli_says_the_disk_is_full(
    tmp_path: Path, small_fs: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if small_fs is None:
        pytest.skip("needs a tmpfs mount: run the suite as root")
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("PA_HOME", str(small_fs / "home"))
    app = App.open()  # held open so the CLI finds the WAL files and fails on its first write
    try:
        app.add_repo(repo, name="demo")
        s = app.new_session("talk", repo="demo", cmd=_chatty(tmp_path))
        _finished_output(app, s.id)
        ballast = _fill(small_fs)
        p = pa("wait", "--timeout", "10", s.id)
        ballast.unlink()
        assert p.returncode != 0
        assert "Traceback" not in p.stderr, p.stderr
        assert "full" in p.stderr.lower() or "space" in p.stderr.lower(), p.stderr
    finally:
        app.close()


def test_checkpoint_on_a_full_disk(tmp_path: Path, small_fs: Path | None) -> None:
    if small_fs is None:
        pytest.skip("needs a tmpfs mount to fill the repository's disk: run the suite as root")
    repo = make_repo(small_fs / "repo")
    write_settings(f'worktree_root = "{small_fs / "wt"}"\n')
    from parallel_agents.sessions import review as review_service

    app = App.open()
    try:
        app.add_repo(repo, name="demo")
        s = app.new_session("write", repo="demo", cmd=["true"])
        wait_until(
            lambda: app.refresh() or not app.store.session(s.id).status.active,
            timeout=60,
            what="the session to finish",
        )
        s = app.store.session(s.id)
        wt = Path(s.worktree)
        (wt / "big.bin").write_bytes(os.urandom(700_000))  # incompressible: needs the space
        (wt / "README.md").write_text("changed\n")
        adm = pool.admin_dir(wt)
        assert adm is not None
        before = ((adm / "HEAD").read_text(), (adm / "index").read_bytes())
        ref = f"refs/pa/sessions/{s.id}/turns/1"
        old = git(repo, "rev-parse", ref).strip()
        ballast = _fill(small_fs)
        with pytest.raises(PAError) as err:
            review_service.checkpoint_turn(app.store, s, 1)
        msg = str(err.value)
        assert "space" in msg.lower() or "write" in msg.lower(), msg
        assert ((adm / "HEAD").read_text(), (adm / "index").read_bytes()) == before
        assert git(repo, "rev-parse", ref).strip() == old  # the old checkpoint is intact
        p = pa("diff", s.id, "--stat")
        assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.startswith("error:"), p.stderr
        ballast.unlink()
        new = review_service.checkpoint_turn(app.store, s, 1)
        assert new and new != old
        assert git(repo, "show", f"{new}:README.md") == "changed\n"
        fsck = subprocess.run(
            ["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, text=True
        )
        assert fsck.returncode == 0, fsck.stderr
        assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        app.close()


def test_the_pool_keeps_above_the_floor_and_gives_way_when_the_disk_fills(
    tmp_path: Path, small_fs: Path | None, pool_on: None
) -> None:
    """issue 14 §2: warm worktrees on a 3 MB disk with pool.min_free = 1 MB: the fill stops
    at the floor; ballast that pushes free space under it makes the next fill give
    worktrees back until it is above the floor again; the space back, it fills again."""
    if small_fs is None:
        pytest.skip("needs a tmpfs mount for the worktrees: run the suite as root")
    files = {f"f{i:02d}.txt": "y" * 5000 for i in range(60)}  # 60 blocks of 8 KiB
    repo = make_repo(tmp_path / "repo", files)
    write_settings(
        f'worktree_root = "{small_fs / "wt"}"\n'
        '[pool]\nsize = 8\nbackground = false\ndisk_budget = "100%"\nmin_free = "1MB"\n'
    )
    app = App.open()

    def free() -> int:
        st = os.statvfs(small_fs)
        return st.f_bavail * st.f_frsize

    try:
        r = app.add_repo(repo, name="demo")
        rep = pool.fill(app.settings, r)
        assert rep.errors == [] and rep.limit == "disk", rep
        assert 1 <= rep.ready < 8
        assert free() >= 1_000_000, (free(), rep)
        each = rep.entry_bytes
        assert each is not None and each >= 60 * 8192
        before = rep.ready
        ballast = small_fs / "ballast"
        ballast.write_bytes(b"\0" * (free() - 1_000_000 + each // 2))  # half an entry short
        assert pool.needs_fill(app.settings, r)
        rep = pool.fill(app.settings, r)
        assert rep.ready < before and rep.discarded >= 1, rep
        assert free() >= 1_000_000 - 8192, free()
        assert len(git(repo, "worktree", "list").splitlines()) == 1 + rep.ready
        ballast.unlink()
        assert pool.fill(app.settings, r).ready == before
    finally:
        app.close()

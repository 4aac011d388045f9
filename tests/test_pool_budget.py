"""Issue 14 §2: the warm pool on by default for used repos, within a disk budget and above a
free-space floor; `pa pool status` shows what it holds and costs; clear and `repo rm`
release everything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from parallel_agents.config import DiskSize, Settings, parse_size
from parallel_agents.errors import UsageError
from parallel_agents.git import pool, pool_budget
from parallel_agents.sessions import pool_fill
from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo
from tests.reliability.helpers import git, pa, pa_json, wait_until, write_settings

FILES = {f"src/m{i:03d}.py": f"x = {i}\n" * (i + 1) for i in range(60)}


@pytest.fixture
def demo(tmp_path: Path, pool_on: None) -> Path:
    repo = make_repo(tmp_path / "demo", FILES)
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    return repo


def _status() -> dict[str, object]:
    rows = pa_json("pool", "status", "--repo", "demo")
    assert isinstance(rows, list)
    return dict(rows[0])


def _settled(want: int) -> dict[str, object] | None:
    st = _status()
    return st if not st["filling"] and st["ready"] == want and st["unready"] == 0 else None


def _ok(*args: str) -> None:
    p = pa(*args)
    assert p.returncode == 0, f"pa {' '.join(args)}: {p.stdout}\n{p.stderr}"


def _token(wt: Path) -> str:
    return (wt / ".git").read_text().strip().rsplit("/", 1)[1]


def test_a_used_repo_gets_a_warm_pool_by_default(demo: Path) -> None:
    """issue 14 §2: with the default pool settings, the first session in a repo starts the
    filler, and the next `pa new` there gets a warm worktree (on main: pool.size = 0)."""
    # Only the floor is lowered, so that a CI disk with less than 5 GiB free passes too.
    write_settings('[pool]\nmin_free = "1MB"\n')
    st = _status()
    assert (st["used"], st["ready"], st["want"], st["limit"]) == (False, 0, 0, "unused")
    first = pa_json("new", "one", "--repo", "demo", "--cmd", "true")
    st = wait_until(lambda: _settled(2), timeout=90, what="the default pool to fill")
    assert st["used"] is True and st["size"] == 2
    tokens = {e["token"] for e in st["entries"]}  # type: ignore[attr-defined]
    second = pa_json("new", "two", "--repo", "demo", "--cmd", "true")
    assert _token(Path(second["worktree"])) in tokens  # it came from the pool
    assert _token(Path(first["worktree"])) not in tokens
    for s in (first, second):
        assert pa("wait", "--timeout", "60", s["id"]).returncode == 0


def test_a_registered_repo_without_sessions_costs_nothing(demo: Path) -> None:
    """issue 14 §2: the server's refill leaves repos nobody started a session in alone."""
    app = App.open()
    try:
        assert pool_fill.refill(app.settings, app.store) == []
        assert not pool.pool_dir(app.settings, "demo").exists()
        pool_budget.mark_used(app.settings, "demo")
        assert pool_fill.refill(app.settings, app.store) == ["demo"]
        wait_until(lambda: _settled(2), timeout=90, what="the filler")
    finally:
        app.close()


def test_status_shows_what_the_pool_holds_and_costs(demo: Path) -> None:
    """issue 14 §2: worktrees, estimated bytes on disk, budget, free space and floor."""
    write_settings('[pool]\nbackground = false\ndisk_budget = "1GiB"\nmin_free = "1MB"\n')
    filled = pa_json("pool", "fill", "--repo", "demo")
    assert filled[0]["ready"] == 2 and filled[0]["limit"] == "size"
    st = _status()
    each = st["entry_bytes"]
    assert isinstance(each, int) and each > 0
    assert st["bytes"] == 2 * each and st["held_bytes"] == 2 * each
    assert st["budget_bytes"] == 1024**3 and st["floor_bytes"] == 1_000_000
    assert isinstance(st["free_bytes"], int) and st["free_bytes"] > 0
    # The estimate is of the right size: a real warm worktree's blocks (du) within 2x.
    entry = Path(st["entries"][0]["path"])  # type: ignore[index]
    du = int(subprocess.run(["du", "-sk", str(entry)], capture_output=True, text=True,
                            check=True).stdout.split()[0]) * 1024  # fmt: skip
    assert du / 2 <= each <= du * 2, (each, du)
    text = pa("pool", "status").stdout
    assert "demo: 2/2 ready" in text and "on disk" in text, text
    assert "1.0 GiB budget (pool.disk_budget = 1GiB)" in text, text
    assert st["disk_budget"] == "pool.disk_budget = 1GiB"


def test_the_budget_caps_the_pool(demo: Path) -> None:
    """issue 14 §2: pool.disk_budget over all pools; --size ignores it."""
    write_settings("[pool]\nbackground = false\nsize = 3\n")
    _ok("pool", "fill", "--repo", "demo", "--size", "1")
    each = _status()["entry_bytes"]
    assert isinstance(each, int)
    write_settings(f"[pool]\nbackground = false\nsize = 3\ndisk_budget = {int(each * 1.5)}\n")
    rep = pa_json("pool", "fill", "--repo", "demo")[0]
    assert (rep["ready"], rep["limit"]) == (1, "budget")
    write_settings("[pool]\nbackground = false\nsize = 3\ndisk_budget = 0\n")
    rep = pa_json("pool", "fill", "--repo", "demo")[0]
    assert rep["ready"] == 0  # a budget of 0: no pool
    rep = pa_json("pool", "fill", "--repo", "demo", "--size", "2")[0]
    assert rep["ready"] == 2  # an explicit size is not held to the budget


def test_a_short_disk_empties_the_pool_and_sessions_still_start(demo: Path) -> None:
    """issue 14 §2: below pool.min_free the pool gives its worktrees back (the server's
    refill notices), fills nothing, not even for --size, and `pa new` works as ever."""
    write_settings("[pool]\nbackground = true\n")
    _ok("pool", "fill", "--repo", "demo")
    assert _status()["ready"] == 2
    write_settings('[pool]\nbackground = true\nmin_free = "100%"\n')  # never that much free
    app = App.open()
    try:
        r = app.store.repo_by_name("demo")
        assert r is not None
        assert pool.needs_fill(app.settings, r)
        assert pool_fill.refill(app.settings, app.store) == ["demo"]
        st = wait_until(lambda: _settled(0), timeout=90, what="the filler to give space back")
        assert (st["want"], st["limit"], st["bytes"]) == (0, "disk", 0)
        assert len(git(demo, "worktree", "list").splitlines()) == 1
        assert not pool.needs_fill(app.settings, r)
    finally:
        app.close()
    rep = pa_json("pool", "fill", "--repo", "demo", "--size", "2")[0]
    assert (rep["ready"], rep["limit"]) == (0, "disk")
    assert "disk short" in pa("pool", "status").stdout
    s = pa_json("new", "work", "--repo", "demo", "--cmd", "true")
    assert (Path(s["worktree"]) / "src" / "m001.py").exists()
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0


def test_clear_and_repo_rm_release_everything(demo: Path) -> None:
    """issue 14 §2: `pa pool clear` removes the worktrees, the estimate and the use mark
    (no refill until the next session); `pa repo rm` likewise."""
    write_settings("[pool]\nbackground = true\n")
    _ok("pool", "fill", "--repo", "demo")
    home = Path(os.environ["PA_HOME"])
    app = App.open()
    pdir = pool.pool_dir(app.settings, "demo")
    app.close()
    assert (pdir / pool_budget.COST_FILE).exists()
    assert pa_json("pool", "clear", "--repo", "demo")[0]["discarded"] == 2
    st = _status()
    assert (st["ready"], st["used"], st["bytes"]) == (0, False, 0)
    assert not (pdir / pool_budget.COST_FILE).exists()
    app = App.open()
    try:
        assert pool_fill.refill(app.settings, app.store) == []
    finally:
        app.close()
    _ok("pool", "fill", "--repo", "demo")
    assert (home / pool_budget.USED_DIR / "demo").exists()
    assert pa("repo", "rm", "demo").returncode == 0
    assert len(git(demo, "worktree", "list").splitlines()) == 1
    assert not (home / pool_budget.USED_DIR / "demo").exists()
    assert [p.name for p in pdir.iterdir() if not p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", DiskSize(bytes=0)),
        (0, DiskSize(bytes=0)),
        (1234, DiskSize(bytes=1234)),
        ("500MB", DiskSize(bytes=500_000_000)),
        ("2GiB", DiskSize(bytes=2 * 1024**3)),
        ("1.5G", DiskSize(bytes=int(1.5 * 1024**3))),
        (" 10 k ", DiskSize(bytes=10240)),
        ("5%", DiskSize(fraction=0.05)),
        ("0.5%", DiskSize(fraction=0.005)),
    ],
)
def test_sizes_that_parse(text: object, expected: DiskSize) -> None:
    assert parse_size(text, "pool.disk_budget", of="free space") == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5 parsecs", "is not a size"),
        ("-1GB", "is negative"),
        (-5, "is negative"),
        ("150%", "between 0% and 100%"),
        ("x%", "not a percentage"),
        (True, "is not a size"),
        ([1], "is not a size"),
    ],
)
def test_sizes_that_do_not(text: object, why: str) -> None:
    with pytest.raises(UsageError, match=why) as err:
        parse_size(text, "pool.disk_budget", of="free space")
    assert err.value.hint and "500MB" in err.value.hint and "5%" in err.value.hint


def test_a_bad_budget_is_a_clear_error(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue 14 §2: a bad pool.disk_budget or pool.min_free stops with error and hint,
    naming the file (or the environment variable), no traceback."""
    cfg = write_settings('[pool]\ndisk_budget = "lots"\n')
    p = pa("pool", "status")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith(f"error: {cfg}: pool.disk_budget = 'lots' is not a size"), p.stderr
    assert "hint:" in p.stderr and "percentage" in p.stderr
    write_settings('[pool]\nmin_free = "200%"\n')
    p = pa("new", "x", "--repo", "demo", "--cmd", "true")
    assert p.returncode == 2 and "pool.min_free = '200%'" in p.stderr, p.stderr
    write_settings("")
    monkeypatch.setenv("PA_POOL_DISK_BUDGET", "plenty")
    p = pa("pool", "status")
    assert p.returncode == 2 and "error: PA_POOL_DISK_BUDGET = 'plenty'" in p.stderr, p.stderr


def test_the_plan_takes_the_smallest_limit(pool_on: None) -> None:
    s = Settings()
    s.data["pool"]["disk_budget"] = "1000"
    s.data["pool"]["min_free"] = 0
    p = pool_budget.plan(s, size=3, room=16, have=0, held_elsewhere=0, entry_bytes=400)
    assert (p.want, p.limit) == (2, "budget")
    p = pool_budget.plan(s, size=3, room=1, have=0, held_elsewhere=0, entry_bytes=400)
    assert (p.want, p.limit) == (1, "max")
    p = pool_budget.plan(s, size=3, room=16, have=0, held_elsewhere=900, entry_bytes=400)
    assert (p.want, p.limit) == (0, "budget")  # the other pools used it up
    s.data["pool"]["size"] = 0
    p = pool_budget.plan(s, size=0, room=16, have=0, held_elsewhere=0, entry_bytes=400)
    assert (p.want, p.limit) == (0, "off")

"""Warm worktree pool: pre-created checkouts that `pa new` takes instead of creating one.

Checking out a large repository dominates session start (about 1 s for 20,000 files on
two cores); the pool does that work ahead of time. Per repository, up to ``pool.size``
worktrees (default 2; 0: off) wait on a detached HEAD at the repo's default base commit
under ``$worktree_root/<repo>/.pool/``; ``pool.max`` caps the total over all repos, and
the disk budget and free-space floor cap it further (``pool_budget.py``: which repos,
how many, what one costs). Pools are refilled by a detached low-priority filler, started
after a take and by the server every ``pool.refill_every`` seconds when a pool is short,
stale or over its limits: that process side lives in ``sessions/pool_fill.py``; this
module is the git and file mechanics only.

Layout of ``$worktree_root/<repo>/.pool/``::

    <token>/          a registered git worktree, detached at the base commit
    <token>.ready     marker (JSON {"commit", "created"}): the worktree is complete
    .fill.lock        flock held by the one process filling this pool
    .cost             estimated bytes of one entry at the last base (pool_budget.py)
    .trash/           discarded entries, already unregistered, being deleted

Invariant: only markers make entries visible, and a marker is written after the checkout
is complete, so a filler killed half-way leaves only an unmarked directory, which the next
fill (or ``pa doctor``) removes. How an entry is taken (and its invariants) is
``pool_take.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.config import Settings, pool_disk_budget
from parallel_agents.errors import PAError
from parallel_agents.git import pool_budget, worktrees
from parallel_agents.models import Repo

# It lives in worktrees (which pool imports); ops.doctor and ops.rebuild call pool.admin_dir.
admin_dir = worktrees.admin_dir

POOL_DIR = ".pool"
TRASH_DIR = ".trash"
FILL_LOCK = ".fill.lock"
FILL_LOG = ".fill.log"
MARKER_SUFFIX = ".ready"
ARCHIVE_PREFIX = "refs/pa/archive/"
ZERO_OID = "0" * 40
DEFAULT_MAX = 16


# -- settings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolConfig:
    size: int  # warm worktrees wanted for this repo (0: pool off)
    max: int  # cap on warm worktrees over all repos
    background: bool  # refill in a detached low-priority process after a take


def _int(value: Any, default: int) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


def config_for(settings: Settings, repo_name: str) -> PoolConfig:
    """``[pool] size``, ``max``, ``background``; ``[pool.repos.<name>] size`` overrides."""
    size = settings.get(f"pool.repos.{repo_name}.size")
    if size is None:
        size = settings.get("pool.size")
    max_total = _int(settings.get("pool.max"), DEFAULT_MAX)
    bg = settings.get("pool.background")
    return PoolConfig(
        size=min(_int(size, 0), max_total),
        max=max_total,
        background=True if bg is None else bool(bg),
    )


def pool_dir(settings: Settings, repo_name: str) -> Path:
    return settings.worktree_root / repo_name / POOL_DIR


def default_base_commit(repo: Repo) -> str | None:
    """The commit a session of ``repo`` starts from when ``--base`` is not given."""
    path = Path(repo.path)
    ref = repo.base or git.current_branch(path) or "HEAD"
    return git.rev_parse(path, ref)


# -- entries -------------------------------------------------------------------------------
@dataclass
class Entry:
    token: str
    path: Path
    marker: Path | None  # None: no marker (being filled, or left by a dead filler)
    commit: str | None
    created: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "path": str(self.path),
            "ready": self.marker is not None,
            "commit": self.commit,
            "created": self.created,
        }


def _read_marker(p: Path) -> tuple[str | None, float | None]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return str(data["commit"]), float(data.get("created") or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def scan(pdir: Path) -> tuple[list[Entry], list[Path]]:
    """(entries, markers without a directory) in ``pdir``."""
    dirs: dict[str, Path] = {}
    markers: dict[str, Path] = {}
    try:
        it = list(os.scandir(pdir))
    except FileNotFoundError:
        return [], []
    for d in it:
        if d.name.startswith("."):
            continue
        if d.name.endswith(MARKER_SUFFIX) and d.is_file(follow_symlinks=False):
            markers[d.name[: -len(MARKER_SUFFIX)]] = Path(d.path)
        elif d.is_dir(follow_symlinks=False):
            dirs[d.name] = Path(d.path)
    entries = []
    for token, path in sorted(dirs.items()):
        marker = markers.get(token)
        commit, created = _read_marker(marker) if marker else (None, None)
        if marker is not None and commit is None:
            marker = None  # unreadable marker: treat as not ready
        entries.append(Entry(token, path, marker, commit, created))
    lone = [m for t, m in sorted(markers.items()) if t not in dirs]
    return entries, lone


def ready_entries(pdir: Path, commit: str | None = None) -> list[Entry]:
    entries, _ = scan(pdir)
    return [e for e in entries if e.marker and (commit is None or e.commit == commit)]


# -- discarding ----------------------------------------------------------------------------
def archive_dirty(repo_path: Path, wt: Path, name: str) -> str | None:
    """Snapshot a dirty worktree under refs/pa/archive/<name>; the ref, or None if clean."""
    st = git.run(["status", "--porcelain=v1", "-z", "--untracked-files=all"], wt, check=False)
    if st.returncode == 0 and not st.stdout:
        return None
    from parallel_agents.git import snapshots

    ref = unique_ref(repo_path, ARCHIVE_PREFIX + name)
    snapshots.checkpoint(wt, ref, f"pa: archive of {wt} before removing it")
    return ref


def unique_ref(repo_path: Path, ref: str) -> str:
    if not git.ref_exists(repo_path, ref):
        return ref
    return f"{ref}-{int(time.time() * 1000)}-{secrets.token_hex(2)}"


def unregister(repo_path: Path, wt: Path, trash: Path) -> Path | None:
    """Under the repo lock: move ``wt`` into ``trash`` and drop git's record of it.

    Fast (a rename and a small directory), so the lock is held briefly; the slow
    deletion of the files happens afterwards in ``empty_trash``.
    """
    with worktrees.repo_lock(repo_path):
        return unregister_locked(git.common_dir(repo_path), wt, trash)


def unregister_locked(common: Path, wt: Path, trash: Path) -> Path | None:
    """``unregister`` for a caller that already holds the repo lock."""
    trash.mkdir(parents=True, exist_ok=True)
    dest = trash / f"{wt.name}-{secrets.token_hex(3)}"
    admin = admin_dir(wt)
    try:
        os.rename(wt, dest)
    except FileNotFoundError:
        return None
    if admin is not None and admin.parent == common / "worktrees" and admin.is_dir():
        shutil.rmtree(admin, ignore_errors=True)
    return dest


def empty_trash(trash: Path) -> int:
    n = 0
    with contextlib.suppress(FileNotFoundError):
        for d in os.scandir(trash):
            shutil.rmtree(d.path, ignore_errors=True)
            n += 1
    return n


# -- filling -------------------------------------------------------------------------------
@contextlib.contextmanager
def fill_lock(pdir: Path, *, wait: bool, fd: int | None = None) -> Iterator[bool]:
    """Hold the pool's fill lock; yields False when ``wait`` is off and it is busy."""
    if fd is not None:  # handed over by pool_fill.kick(): already locked
        try:
            yield True
        finally:
            os.close(fd)
        return
    pdir.mkdir(parents=True, exist_ok=True)
    lfd = os.open(pdir / FILL_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(lfd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(lfd)


def filling(pdir: Path) -> bool:
    """Is a filler working on this pool right now?"""
    try:
        fd = os.open(pdir / FILL_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass
class FillReport:
    repo: str
    base: str | None
    target: int
    created: int = 0
    discarded: int = 0  # stale, dirty, broken or surplus entries removed
    ready: int = 0  # warm entries at the base after the fill
    busy: bool = False  # another filler held the lock; nothing done
    limit: str = ""  # what capped the target (pool_budget.Plan.limit)
    entry_bytes: int | None = None  # estimated cost of one warm worktree
    skipped: int = 0  # not created: the disk would have gone below pool.min_free
    removed_trash: int = 0
    archived: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fill(
    settings: Settings,
    repo: Repo,
    *,
    target: int | None = None,
    wait: bool = True,
    workers: int | None = None,
    lock_fd: int | None = None,
) -> FillReport:
    """Bring one repo's pool to ``target`` warm worktrees at the current base commit.

    Removes leftovers first: unmarked directories (a dead filler's), markers without a
    directory, entries at another commit (the base moved), entries whose worktree git no
    longer knows, and the trash.
    """
    t0 = time.monotonic()
    pdir = pool_dir(settings, repo.name)
    repo_path = Path(repo.path)
    base = default_base_commit(repo)
    rep = FillReport(repo.name, base, max(0, target or 0))
    if target == 0 and not pdir.exists():
        return rep
    with fill_lock(pdir, wait=wait, fd=lock_fd) as got:
        if not got:
            rep.busy = True
            return rep
        if target is None or target > 0:
            # Under the lock: the plan counts this pool's entries and measures its cost.
            pl = _plan(settings, repo, pdir, base, measure=True, explicit=target is not None)
            rep.entry_bytes = pl.entry_bytes
            if target is None:
                rep.target, rep.limit = pl.want, pl.limit
            elif pl.by_floor is not None and pl.by_floor < target:  # explicit: only the floor
                rep.target, rep.limit = pl.by_floor, "disk"
        want = rep.target
        keep = _tidy(repo_path, pdir, base, want, rep, settings.home)
        missing = want - len(keep)
        if missing > 0 and base is not None:
            n_workers = workers or max(1, min(missing, os.cpu_count() or 1))
            cost = rep.entry_bytes or 0
            with ThreadPoolExecutor(max_workers=n_workers) as ex:
                made = list(
                    ex.map(
                        lambda _: _create_entry(repo_path, pdir, base, settings.home)
                        if pool_budget.room_for_one(settings, cost)
                        else None,
                        range(missing),
                    )
                )
            done = [m for m in made if isinstance(m, _NewEntry)]
            rep.errors += [m for m in made if isinstance(m, str)]
            rep.skipped = sum(1 for m in made if m is None)
            rep.created = _publish(repo_path, pdir, base, done, rep.errors)
        elif base is None:
            rep.errors.append(f"the base of {repo.name} names no commit")
        rep.ready = len(ready_entries(pdir, base))
    rep.seconds = round(time.monotonic() - t0, 3)
    return rep


def _tidy(
    repo_path: Path,
    pdir: Path,
    base: str | None,
    want: int,
    rep: FillReport,
    home: Path | None = None,
) -> list[Entry]:
    """With the fill lock held: drop everything but up to ``want`` good entries. Entries
    another PA_HOME made (a shared worktree root) are neither counted nor touched."""
    entries, lone = scan(pdir)
    if home is not None:
        entries = [e for e in entries if not foreign(e.path, home)]
    for m in lone:
        with contextlib.suppress(FileNotFoundError):
            m.unlink()
    registered = _registered(repo_path)
    keep: list[Entry] = []
    for e in entries:
        if (
            e.marker is None
            or e.commit != base
            or str(e.path) not in registered
            or len(keep) >= want
        ):
            _drop_entry(repo_path, pdir, e, rep)
        else:
            keep.append(e)
    rep.removed_trash = empty_trash(pdir / TRASH_DIR)
    return keep


def tidy(settings: Settings, repo: Repo) -> FillReport:
    """Remove leftovers (dead fillers' entries, stale entries, lone markers, trash) without
    creating anything; busy when a filler runs (it tidies itself). Used by ``pa doctor``."""
    pdir = pool_dir(settings, repo.name)
    base = default_base_commit(repo)
    rep = FillReport(repo.name, base, 0)
    if not pdir.exists():
        return rep
    with fill_lock(pdir, wait=False) as got:
        if not got:
            rep.busy = True
            return rep
        cap = config_for(settings, repo.name).size
        rep.target = cap
        _tidy(Path(repo.path), pdir, base, cap, rep, settings.home)
        rep.ready = len(ready_entries(pdir, base))
    return rep


def _plan(
    settings: Settings,
    repo: Repo,
    pdir: Path,
    base: str | None,
    *,
    measure: bool,
    explicit: bool = False,
) -> pool_budget.Plan:
    """How many this pool may hold now; ``measure``: estimate the cost at ``base`` when the
    cache has none (one ``git ls-tree``), else use the last estimate; ``explicit``: a size
    was asked for (only the floor applies), so measure even with the pool off."""
    cfg = config_for(settings, repo.name)
    others, held = pool_budget.elsewhere(settings, repo.name, POOL_DIR, MARKER_SUFFIX)
    have = len([e for e in ready_entries(pdir, base) if not foreign(e.path, settings.home)])
    entry: int | None = None
    if (cfg.size > 0 or explicit) and base is not None:
        if measure and (explicit or not pool_disk_budget(settings).zero):
            d = pool_budget.disk(settings.worktree_root)
            entry = pool_budget.cost(Path(repo.path), pdir, base, d.block if d else 4096)
        else:
            entry = pool_budget.cached_cost(pdir)[1]
    return pool_budget.plan(
        settings,
        size=cfg.size,
        room=cfg.max - others,
        have=have,
        held_elsewhere=held,
        entry_bytes=entry,
    )


def _registered(repo_path: Path) -> set[str]:
    try:
        return set(worktrees.registered_worktrees(repo_path))
    except PAError:
        return set()


def _drop_entry(repo_path: Path, pdir: Path, e: Entry, rep: FillReport) -> None:
    if e.marker is not None:
        with contextlib.suppress(FileNotFoundError):
            e.marker.unlink()
    if (e.path / ".git").exists():
        with contextlib.suppress(PAError, OSError):  # OSError: a taker moved it meanwhile
            ref = archive_dirty(repo_path, e.path, f"pool-{e.token}")
            if ref:
                rep.archived.append(ref)
    unregister(repo_path, e.path, pdir / TRASH_DIR)
    rep.discarded += 1


@dataclass
class _NewEntry:
    token: str
    path: Path
    checked_out: float  # wall-clock time the checkout finished


def foreign(path: Path, home: Path) -> bool:
    """Did another PA_HOME make this warm worktree?"""
    return worktrees.foreign_owner(admin_dir(path), home) is not None


def _create_entry(
    repo_path: Path, pdir: Path, base: str, home: Path | None = None
) -> _NewEntry | str:
    """A complete but unmarked entry (invisible to takers), or an error message."""
    token = secrets.token_hex(4)
    path = pdir / token
    try:
        with worktrees.repo_lock(repo_path):
            git.run(["worktree", "add", "--no-checkout", "--detach", str(path), base], repo_path)
        if home is not None:
            worktrees.mark_owner(path, home)
        git.run(["reset", "--hard", "--quiet"], path)
        return _NewEntry(token, path, time.time())
    except (PAError, OSError) as e:
        with contextlib.suppress(PAError, OSError):
            if path.exists():
                unregister(repo_path, path, pdir / TRASH_DIR)
        return f"{path}: {e}"


def _large(wt: Path) -> bool:
    """Worth waiting for a clean refresh? (An index over 256 KB: a few thousand files.)"""
    adm = admin_dir(wt)
    try:
        return adm is not None and (adm / "index").stat().st_size > 256 * 1024
    except OSError:
        return False


def _publish(
    repo_path: Path, pdir: Path, base: str, made: list[_NewEntry], errors: list[str]
) -> int:
    """Refresh the new entries' stat data, then write their markers; how many were published.

    git compares file times in whole seconds: a file written in the same second as the
    index is "racily clean" and costs a content comparison at every later ``git status``
    until the index is rewritten in a later second. So the refresh waits for the second
    after the last checkout to begin (at most one second, in the filler, never in a take).
    """
    if not made:
        return 0
    last = max(m.checked_out for m in made)
    delay = math.floor(last) + 1.05 - time.time()
    if delay > 0 and _large(made[0].path):
        time.sleep(delay)
    n = 0
    for m in made:
        try:
            git.run(["update-index", "-q", "--refresh"], m.path, check=False)
            marker = pdir / f"{m.token}{MARKER_SUFFIX}"
            tmp = pdir / f".{m.token}.tmp"
            tmp.write_text(json.dumps({"commit": base, "created": time.time()}), encoding="utf-8")
            os.replace(tmp, marker)
            n += 1
        except (PAError, OSError) as e:
            errors.append(f"{m.path}: {e}")
            with contextlib.suppress(PAError, OSError):
                unregister(repo_path, m.path, pdir / TRASH_DIR)
    return n


def clear(settings: Settings, repo: Repo) -> FillReport:
    """Remove every warm worktree of ``repo`` (waits for a running filler) and forget that
    it was used: the background fills it again only after its next session starts."""
    pool_budget.forget_used(settings, repo.name)
    rep = fill(settings, repo, target=0)
    pdir = pool_dir(settings, repo.name)
    for name in (pool_budget.COST_FILE, FILL_LOG):
        with contextlib.suppress(OSError):
            (pdir / name).unlink()
    return rep


def refill_every(settings: Settings) -> float:
    """``[pool] refill_every``: seconds between the server's pool checks (0: none)."""
    try:
        return max(0.0, float(settings.get("pool.refill_every")))
    except (TypeError, ValueError):
        return 30.0


def needs_fill(settings: Settings, repo: Repo) -> bool:
    """Would a fill change ``repo``'s pool? Decided from a directory scan and one
    ``rev-parse``: fewer (or more) ready entries at the base than wanted under the
    ``pool.max`` cap, entries at another commit or without a marker, lone markers, trash."""
    pdir = pool_dir(settings, repo.name)
    base = default_base_commit(repo)
    entries, lone = scan(pdir)
    entries = [e for e in entries if not foreign(e.path, settings.home)]
    if lone or any(e.marker is None or e.commit != base for e in entries):
        return True
    with contextlib.suppress(OSError):
        if os.listdir(pdir / TRASH_DIR):
            return True
    if base is None:
        return False  # nothing to fill from; the filler would only report an error
    want = _plan(settings, repo, pdir, base, measure=False).want
    return len(entries) != want  # every entry left is ready at the base


# -- status --------------------------------------------------------------------------------
def status(settings: Settings, repo: Repo) -> dict[str, Any]:
    cfg = config_for(settings, repo.name)
    pdir = pool_dir(settings, repo.name)
    base = default_base_commit(repo)
    entries, lone = scan(pdir)
    ready = [e for e in entries if e.marker and e.commit == base]
    stale = [e for e in entries if e.marker and e.commit != base]
    trash_dir = pdir / TRASH_DIR
    trash = len(os.listdir(trash_dir)) if trash_dir.is_dir() else 0
    pl = _plan(settings, repo, pdir, base, measure=False)
    each = pl.entry_bytes or pool_budget.cached_cost(pdir)[1]
    used = pool_budget.wanted(settings, repo.name)
    return {
        "repo": repo.name,
        "dir": str(pdir),
        "size": cfg.size,
        "max": cfg.max,
        "background": cfg.background,
        "base": base,
        "ready": len(ready),
        "stale": len(stale),
        "unready": len([e for e in entries if not e.marker]),
        "lone_markers": len(lone),
        "trash": trash,
        "filling": filling(pdir),
        "entries": [e.to_json() for e in entries],
        "used": used,
        "want": pl.want if used else 0,
        "limit": pl.limit if used else "unused",
        "entry_bytes": each,  # estimated (pool_budget.estimate)
        "bytes": len(entries) * (each or 0),  # what this pool holds on disk, estimated
        "held_bytes": pl.held_bytes,  # every pool of this home
        "budget_bytes": pl.budget_bytes,
        "disk_budget": pool_budget.budget_setting(settings),
        "free_bytes": pl.free_bytes,
        "floor_bytes": pl.floor_bytes,
    }

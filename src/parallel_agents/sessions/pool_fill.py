"""The warm pool's processes: the detached filler, what starts it, the server's refill.

``git/pool.py`` and ``git/pool_take.py`` hold the git and file mechanics (scan, take,
fill, tidy, status) on plain values; this module adds what needs a process or the store:
a take that starts a filler afterwards, the filler itself (``python -m
parallel_agents.sessions.pool_fill REPO``) and the periodic top-up of the pools of the
repos the user has used (``pool_budget.wanted``): every ``pa new`` marks its repo used.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Literal, overload

from parallel_agents.config import Settings, load_settings, pool_disk_budget
from parallel_agents.errors import PAError
from parallel_agents.git import pool, pool_budget, pool_take
from parallel_agents.git.pool import FILL_LOCK, FILL_LOG, FillReport
from parallel_agents.runtime.local import Detached
from parallel_agents.store import Store


def take(
    settings: Settings,
    repo_path: Path,
    repo_name: str,
    path: Path,
    branch: str,
    base_commit: str,
) -> bool:
    """``pool_take.take``, then (with the pool on and ``pool.background``) a filler started to
    replace what was taken or to fill a pool that could not serve. Marks the repo used:
    from now on the background keeps its pool filled."""
    pool_budget.mark_used(settings, repo_name)
    res = pool_take.take_detail(settings, repo_path, repo_name, path, branch, base_commit)
    cfg = pool.config_for(settings, repo_name)
    if cfg.size > 0 and cfg.background and not _budget_zero(settings):
        kick_soon(settings, repo_name)
    return res.taken


def _budget_zero(settings: Settings) -> bool:
    try:
        return pool_disk_budget(settings).zero
    except PAError:
        return True  # a bad budget: no filling (`pa pool status` and the next command say why)


@overload
def refill(settings: Settings, store: Store, *, wait: Literal[False] = False) -> list[str]: ...
@overload
def refill(settings: Settings, store: Store, *, wait: Literal[True]) -> list[FillReport]: ...
def refill(settings: Settings, store: Store, *, wait: bool = False) -> list[str] | list[FillReport]:
    """Top up every repo's pool (the server calls this every ``pool.refill_every`` s).

    By default cheap: each used repo (``pool_budget.wanted``) with its pool on and
    ``pool.background`` true whose pool ``needs_fill`` (short, stale, over the budget or
    the disk short) gets a detached filler (``kick``; none while one runs); returns the
    names of the repos kicked. ``wait=True`` fills in this process instead (waiting for a
    running filler), pools switched off or not used but not empty emptied, and returns the
    reports. Repos with ``pool.background = false`` are left alone: ``pa pool fill`` fills
    them.
    """
    _reap()
    kicked: list[str] = []
    out: list[FillReport] = []
    for repo in store.repos():
        pdir = pool.pool_dir(settings, repo.name)
        cfg = pool.config_for(settings, repo.name)
        if not cfg.background:
            continue
        wanted = pool_budget.wanted(settings, repo.name)
        if wait:
            if (cfg.size <= 0 or not wanted) and not pdir.exists():
                continue
            try:
                out.append(pool.fill(settings, repo, wait=True, target=None if wanted else 0))
            except PAError as e:
                out.append(FillReport(repo.name, None, 0, errors=[e.message]))
            continue
        if cfg.size <= 0 or not wanted or pool.filling(pdir):
            continue
        try:
            if pool.needs_fill(settings, repo) and kick(settings, repo.name):
                kicked.append(repo.name)
        except (PAError, OSError):
            continue  # e.g. the repo's directory is gone: `pa doctor` reports it
    return out if wait else kicked


def kick_soon(settings: Settings, repo_name: str) -> None:
    """``kick`` on a thread: starting the filler costs a fork, which the session being
    started should not wait for. (Not a daemon thread: a short CLI process waits for it.)"""
    threading.Thread(target=kick, args=(settings, repo_name), name="pa-pool-kick").start()


def kick(settings: Settings, repo_name: str) -> bool:
    """Start a detached, low-priority filler for ``repo_name`` unless one is running.

    The fill lock is taken here and handed to the child through an inherited file
    descriptor, so a burst of takes starts at most one filler.
    """
    pdir = pool.pool_dir(settings, repo_name)
    try:
        pdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(pdir / FILL_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        env = dict(os.environ)
        env["PA_HOME"] = str(settings.home)
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        _reap()
        with open(pdir / FILL_LOG, "ab") as log:
            proc = Detached(
                [
                    sys.executable,
                    "-m",
                    "parallel_agents.sessions.pool_fill",  # this module's _main
                    repo_name,
                    "--lock-fd",
                    str(fd),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                pass_fds=(fd,),
                start_new_session=True,
                cwd="/",
            )
        with _fillers_lock:
            _fillers.append(proc)  # reaped later: the filler is not ours to wait for
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # the child keeps the lock through its copy


_fillers: list[Detached] = []
_fillers_lock = threading.Lock()


def _reap() -> None:
    with _fillers_lock:
        for p in list(_fillers):
            if p.poll() is not None:
                _fillers.remove(p)


def _main(argv: list[str]) -> int:
    """``python -m parallel_agents.sessions.pool_fill REPO [--lock-fd N]``: the filler."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m parallel_agents.sessions.pool_fill")
    ap.add_argument("repo")
    ap.add_argument("--lock-fd", type=int)
    args = ap.parse_args(argv)
    with contextlib.suppress(OSError):
        os.nice(10)
    settings = load_settings()
    store = Store(settings.home)
    try:
        repo = store.repo_by_name(args.repo)
        if repo is None:
            if args.lock_fd is not None:
                os.close(args.lock_fd)
            return 2
        rep = pool.fill(settings, repo, lock_fd=args.lock_fd, workers=1, wait=False)
        print(json.dumps(rep.to_json()), flush=True)
        return 0 if not rep.errors else 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

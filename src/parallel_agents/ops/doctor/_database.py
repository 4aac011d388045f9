"""The database checks: SQLite's integrity check, a store that would not open, and
session folders whose rows are gone (pa.db emptied or replaced by an older copy).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.git import pool
from parallel_agents.ops.doctor._files import _real
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def _check_database(app: App, rep: Report) -> bool:
    """False when the database is damaged (then nothing else is checked)."""
    try:
        msgs = app.store.integrity_check()
    except PAError as e:  # DatabaseDamaged; other database errors come as messages
        msgs = [str(e)]
    if msgs != ["ok"]:
        rep.add(database_finding(app.store.path, "integrity check failed: " + "; ".join(msgs[:5])))
        return False
    return True


def database_finding(path: Path, detail: str) -> Finding:
    """A damaged ``pa.db``: what to do, naming the newest backup when there is one."""
    from parallel_agents.store import damaged_error

    hint = damaged_error(path, Exception(detail)).hint
    # No ``fix``: --repair never edits a damaged database; the user restores it.
    return Finding("database", str(path), f"{detail}; to recover: {hint}")


def check_unopenable(home: Path, error: PAError) -> Report:
    """`pa doctor` when the store refused to open (damaged, or written by a newer pa):
    a report instead of a crash. Nothing is repaired: every other check needs the store."""
    from parallel_agents.store import DB_FILE, DatabaseTooNew

    rep = Report()
    if isinstance(error, DatabaseTooNew):
        rep.add(Finding("database", str(home / DB_FILE), f"{error.message}; {error.hint}"))
    else:
        rep.add(database_finding(home / DB_FILE, error.message))
    return rep


def _check_state_without_rows(app: App, rep: Report) -> bool:
    """Session folders whose session has no row while their worktrees or branches remain:
    pa.db was emptied (truncated, deleted, re-created) or replaced by an older copy. True
    when found (then nothing in the repos is repaired: the "orphans" are their work)."""
    sessions_dir = app.store.home / "sessions"
    try:
        names = sorted(d.name for d in os.scandir(sessions_dir) if d.is_dir())
    except OSError:
        return False
    known = app.store.session_ids()
    lost = [n for n in names if n not in known]
    if not lost:
        return False
    n_wt, n_refs = _lost_worktrees_and_refs(app, lost)
    listed = f"{', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''}"
    if not n_wt and not n_refs:
        # Only output is left (e.g. their repo was removed with `pa repo rm`): no work.
        f = rep.add(
            Finding(
                "state_without_database",
                str(sessions_dir),
                f"{len(lost)} session folder(s) without a row and without worktrees or"
                f" branches ({listed}): output only; delete them when not needed",
            )
        )
        f.problem = False
        return False
    from parallel_agents.store import newest_backup

    backup = newest_backup(app.store.home)
    path = app.store.path
    restore = (
        f"stop pa (pa server stop), move {path}* aside and copy the newest backup:"
        f" cp {backup} {path}"
        if backup is not None
        else "no backup of pa.db exists"
    )
    rep.add(
        Finding(
            "state_without_database",
            str(sessions_dir),
            f"state without a database: {len(lost)} session folder(s), {n_wt} worktree(s),"
            f" {n_refs} ref(s) belong to sessions {path} does not know ({listed});"
            f" to recover: {restore}. Their worktrees and branches are intact and usable"
            " with git; until then pa doctor --repair leaves every worktree and branch alone",
        )
    )
    return True


def _lost_worktrees_and_refs(app: App, sids: list[str]) -> tuple[int, int]:
    """Worktrees named after the lost sessions under the worktree root, and their refs
    (``refs/pa/sessions/<id>/...`` and ``pa/*-<id>`` branches) in the repos those
    worktrees belong to and in the registered repos."""
    root = app.settings.worktree_root
    wanted = set(sids)
    worktrees_found: list[Path] = []
    with contextlib.suppress(OSError):
        for repo_dir in os.scandir(root):
            if not repo_dir.is_dir():
                continue
            for d in os.scandir(repo_dir.path):
                if d.name in wanted and d.is_dir():
                    worktrees_found.append(Path(d.path))
    commons: set[str] = set()
    for wt in worktrees_found:
        adm = pool.admin_dir(wt)
        if adm is not None:
            commons.add(_real(str(adm.parent.parent)))
    for repo in app.store.repos():
        with contextlib.suppress(PAError, OSError):
            commons.add(_real(str(git.common_dir(Path(repo.path)))))
    n_refs = 0
    for common in sorted(commons):
        r = git.run(
            [
                "--git-dir",
                common,
                "for-each-ref",
                "--format=%(refname)",
                "refs/pa/sessions/",
                "refs/heads/pa/",
            ],
            common,
            check=False,
        )
        for ref in r.stdout.splitlines():
            parts = ref.split("/")
            session_ref = ref.startswith("refs/pa/sessions/") and len(parts) > 3
            if (session_ref and parts[3] in wanted) or (
                ref.startswith("refs/heads/pa/") and ref.rsplit("-", 1)[-1] in wanted
            ):
                n_refs += 1
    return len(worktrees_found), n_refs

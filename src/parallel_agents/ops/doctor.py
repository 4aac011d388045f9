"""`pa doctor`: find, and with ``repair`` fix, what a crash or a kill -9 can leave behind.

Checks, in order:

* the database (``PRAGMA integrity_check``) and a stale ``server.json``;
* per repository, under the per-repo lock (so no ``pa new`` is in its git metadata step
  meanwhile): stale git lock files left by killed git processes, registrations of
  worktrees whose folder is gone, worktrees and folders under the worktree root (or on
  ``pa/*`` branches) that no session owns, session worktrees git no longer knows,
  ``pa/*`` branches without a session, leftovers in the warm pool;
* sessions stuck in ``starting`` with no live process, ``running`` sessions whose
  process is gone, turns that ended without a checkpoint;
* checkouts (the main one or linked worktrees) a ``pa merge`` left behind their branch:
  stopped after it moved the branch and before it updated their index and files.

Nothing that may hold work is deleted before it is archived: a dirty orphan worktree is
snapshotted (untracked files included) and a commit no other branch, tag or archive
reaches is kept, under ``refs/pa/archive/orphan-<name>``. Worktrees outside the
worktree root on non-``pa/`` branches are the user's own and only reported. A worktree
or branch that a known session of another registration owns (by worktree path or by
branch, e.g. a moved repository registered a second time) is never touched: it is
reported with the ``pa repo move`` that fixes the registration.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.git import archive, pool, worktrees
from parallel_agents.git.archive import ORPHAN_PREFIX
from parallel_agents.git.archive import safe_ref_name as _safe
from parallel_agents.models import Session, Status

if TYPE_CHECKING:
    from parallel_agents.models import Repo
    from parallel_agents.sessions.orchestrator import App

SERVER_INFO = "server.json"
SERVER_LOCK = "server.lock"
LOCK_MIN_AGE = 2.0  # a lock file younger than this may belong to a git still starting
ENDED_TURN = ("done", "failed", "stopped", "interrupted")


@dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    repo: str | None = None
    fix: str | None = None  # what --repair does (or did)
    repaired: bool = False
    error: str | None = None  # the repair was tried and failed
    problem: bool = True  # False: for information only, never changed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    repair: bool = False

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.problems if not f.repaired]

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def add(self, f: Finding) -> Finding:
        self.findings.append(f)
        return f

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repair": self.repair,
            "problems": len(self.problems),
            "unresolved": len(self.unresolved),
            "findings": [f.to_json() for f in self.findings],
        }


def check(app: App, *, repair: bool = False, grace: float = 60.0) -> Report:
    """Inspect (and with ``repair`` fix) this PA_HOME. ``grace``: seconds a session may
    sit in ``starting`` before it counts as stuck (a ``pa new`` may still be working)."""
    rep = Report(repair=repair)
    if not _check_database(app, rep):
        return rep  # every further check reads the damaged file
    # With sessions missing from pa.db, "orphans" may be their work: keep them all.
    repair_repos = False if _check_state_without_rows(app, rep) else repair
    _check_server(app, rep, repair)
    procs = _Procs()
    for repo in app.store.repos():
        repo_path = Path(repo.path)
        if not (repo_path / ".git").exists():
            rep.add(
                Finding(
                    "repo_missing",
                    repo.path,
                    "the registered repository is gone; its sessions cannot be checked",
                    repo=repo.name,
                    fix=f"if it was moved: pa repo move {repo.name} NEWPATH; else pa repo rm "
                    f"{repo.name} (after discarding its sessions)",
                )
            )
            continue
        try:
            _RepoCheck(app, repo, rep, repair_repos, procs, min(grace, LOCK_MIN_AGE)).run()
        except PAError as e:
            rep.add(Finding("repo_error", repo.path, e.message, repo=repo.name))
    _check_discards(app, rep, repair)
    _check_sessions(app, rep, repair, grace)
    _check_checkpoints(app, rep, repair)
    _check_merge_checkouts(app, rep, repair)
    _check_stray_processes(app, rep, repair)
    if repair:
        for _ in range(20):  # the supervisor decides about dead or finished processes
            if not app.sup.tick().pending:
                break
        for f in rep.findings:
            if f.kind == "dead_running":
                st = app.store.session(f.subject).status
                f.repaired = not st.active
                if not f.repaired:
                    f.error = f"still {st.value} after the supervisor's pass"
    return rep


# -- database and server -------------------------------------------------------------------
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


def _server_lock_held(home: Path) -> bool:
    try:
        fd = os.open(home / SERVER_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _check_server(app: App, rep: Report, repair: bool) -> None:
    home = app.store.home
    info_path = home / SERVER_INFO
    if not info_path.exists():
        return
    try:
        pid = int(json.loads(info_path.read_text(encoding="utf-8")).get("pid") or 0)
    except (OSError, ValueError, AttributeError):
        pid = 0
    if _server_lock_held(home) and _pid_alive(pid):
        return
    f = rep.add(
        Finding(
            "server_stale",
            str(info_path),
            f"server.json names pid {pid or '?'}, but no server holds {SERVER_LOCK}",
            fix="remove server.json (clients would otherwise try a dead server)",
        )
    )
    if repair:
        with contextlib.suppress(FileNotFoundError):
            info_path.unlink()
        f.repaired = True


def _pid_alive(pid: int) -> bool:
    from parallel_agents.runtime.local import alive

    return pid > 0 and alive(pid)


class _Procs:
    """What live processes have open and run (read from /proc once, lazily)."""

    def __init__(self) -> None:
        self._open: set[str] | None = None
        self._cmdlines: list[str] | None = None

    def refresh(self) -> None:
        self._open = None
        self._cmdlines = None

    def is_open(self, path: Path) -> bool:
        if self._open is None:
            self._open = set()
            for pid in _pids():
                fd_dir = f"/proc/{pid}/fd"
                with contextlib.suppress(OSError):
                    for fd in os.listdir(fd_dir):
                        with contextlib.suppress(OSError):
                            self._open.add(os.readlink(f"{fd_dir}/{fd}"))
        return str(path) in self._open or os.path.realpath(path) in self._open

    def mentions(self, text: str) -> bool:
        if self._cmdlines is None:
            self._cmdlines = []
            for pid in _pids():
                with contextlib.suppress(OSError):
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    self._cmdlines.append(raw.replace(b"\0", b" ").decode("utf-8", "replace"))
        return any(text in c for c in self._cmdlines)


def _pids() -> list[str]:
    try:
        return [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


# -- per repository ------------------------------------------------------------------------
@dataclass
class _Admin:
    """git's record of one linked worktree (``.git/worktrees/<name>/``)."""

    name: str
    dir: Path
    path: Path | None  # the worktree folder it points at
    locked: str | None
    head: str  # contents of its HEAD file


class _RepoCheck:
    def __init__(
        self, app: App, repo: Repo, rep: Report, repair: bool, procs: _Procs, lock_age: float
    ) -> None:
        self.lock_age = lock_age
        self.app = app
        self.repo = repo
        self.rep = rep
        self.repair = repair
        self.procs = procs
        self.path = Path(repo.path)
        self.home = app.store.home
        self.root = app.settings.worktree_root / repo.name
        self.pool_dir = self.root / pool.POOL_DIR
        self.trash = self.pool_dir / pool.TRASH_DIR
        self._foreign_heads: set[str] = set()  # branches checked out by other homes
        self._foreign_paths: set[str] = set()  # their worktrees (already reported)

    def finding(self, kind: str, subject: str, detail: str, fix: str | None) -> Finding:
        return self.rep.add(Finding(kind, subject, detail, repo=self.repo.name, fix=fix))

    def run(self) -> None:
        with worktrees.repo_lock(self.path):
            self.common = git.common_dir(self.path)
            admins = self._admins()
            dirs = self._root_dirs()
            branches = self._pa_branches()
            # Read sessions after listing: a session's row is written before its
            # worktree or branch exists, so nothing listed above can be too new for it.
            sessions = [
                s
                for s in self.app.store.sessions(repo_id=self.repo.id)
                if s.status != Status.DISCARDED
            ]
            known = {_real(s.worktree): s for s in sessions}
            self._adopt(admins, known)
            self._others_by_path, self._others_by_branch = self._other_sessions()
            self._reported: set[str] = set()
            self._stale_locks(admins)
            admins = self._not_foreign(admins)
            admins = self._prunable(admins, known)
            self._orphan_worktrees(admins, known)
            self._unregistered_dirs(dirs, admins, known)
            self._orphan_branches(branches, sessions)
        pool.empty_trash(self.trash)
        self._pool()

    def _other_sessions(self) -> tuple[dict[str, Session], dict[str, Session]]:
        """Known sessions of other registrations, by worktree path and by branch: this
        repository may be one of them, moved (its worktrees are never orphans here)."""
        by_path: dict[str, Session] = {}
        by_branch: dict[str, Session] = {}
        for s in self.app.store.sessions():
            if s.repo_id != self.repo.id and s.status != Status.DISCARDED:
                by_path[_real(s.worktree)] = s
                by_branch[s.branch] = s
        return by_path, by_branch

    def _other_session(self, wt: Path | None, head: str) -> Session | None:
        s = self._others_by_path.get(_real(str(wt))) if wt is not None else None
        if s is None and head.startswith("ref: refs/heads/"):
            s = self._others_by_branch.get(head.removeprefix("ref: refs/heads/").strip())
        return s

    def _owned_elsewhere(self, subject: str, s: Session) -> None:
        """Report, never touch, what a known session of another registration owns."""
        if s.id in self._reported:  # its worktree and its branch: one finding
            return
        self._reported.add(s.id)
        other = self.app.store.repo(s.repo_id)
        moved = not (Path(other.path) / ".git").exists()
        f = self.finding(
            "other_repo_session",
            subject,
            f"belongs to session {s.id} of repo {other.name!r} (registered at {other.path}"
            + (", which is gone: was it moved here?)" if moved else ")")
            + "; left alone",
            f"pa repo move {other.name} {self.path}" if moved else None,
        )
        f.problem = moved

    # listing
    def _admins(self) -> list[_Admin]:
        out: list[_Admin] = []
        base = self.common / "worktrees"
        with contextlib.suppress(FileNotFoundError):
            for d in sorted(os.scandir(base), key=lambda d: d.name):
                if not d.is_dir(follow_symlinks=False):
                    continue
                adir = Path(d.path)
                gitdir = _read(adir / "gitdir")
                wt = Path(gitdir).parent if gitdir else None
                locked = _read(adir / "locked") if (adir / "locked").exists() else None
                out.append(_Admin(d.name, adir, wt, locked, _read(adir / "HEAD") or ""))
        return out

    def _root_dirs(self) -> list[Path]:
        try:
            return sorted(
                Path(d.path)
                for d in os.scandir(self.root)
                if d.is_dir(follow_symlinks=False) and not d.name.startswith(".")
            )
        except FileNotFoundError:
            return []

    def _pa_branches(self) -> dict[str, str]:
        r = git.run(
            ["for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/pa/"],
            self.path,
        )
        out: dict[str, str] = {}
        for line in r.stdout.splitlines():
            name, _, oid = line.partition(" ")
            out[name] = oid
        return out

    def _ours(self, wt: Path | None, head: str = "") -> bool:
        """Is this worktree pa's business (under the root or on a pa/ branch)?"""
        if wt is not None and _is_under(wt, self.root):
            return True
        return head.startswith("ref: refs/heads/pa/")

    # stale lock files
    def _stale_locks(self, admins: list[_Admin]) -> None:
        candidates: list[Path] = []
        for a in admins:
            candidates += [p for p in a.dir.glob("*.lock")]
            if a.locked is not None and a.locked.strip() == "initializing":
                wt = a.path
                if (
                    self._ours(wt, a.head)
                    and not (wt and self.procs.mentions(str(wt)))
                    and _age(a.dir / "locked") >= self.lock_age
                ):
                    f = self.finding(
                        "stale_lock",
                        str(a.dir / "locked"),
                        f"worktree {wt} was left locked by an interrupted `git worktree add`",
                        "remove the lock (git worktree unlock)",
                    )
                    if self.repair:
                        _unlink(a.dir / "locked")
                        a.locked = None
                        f.repaired = True
        # packed-refs.new: git's temp file while it rewrites packed-refs under the lock; a
        # kill leaves it and every later ref deletion fails with "File exists".
        for name in ("packed-refs.lock", "packed-refs.new", "config.lock", "HEAD.lock"):
            candidates.append(self.common / name)
        # A ref lock only lives while one git process updates that ref.
        candidates += list((self.common / "refs").rglob("*.lock"))
        for lock in candidates:
            if not lock.exists() or _age(lock) < self.lock_age or self.procs.is_open(lock):
                continue
            f = self.finding(
                "stale_lock",
                str(lock),
                "lock file left by a git process that is no longer running",
                "remove it",
            )
            if self.repair:
                _unlink(lock)
                f.repaired = True
        main_index_lock = self.common / "index.lock"
        if (
            main_index_lock.exists()
            and _age(main_index_lock) >= self.lock_age
            and not self.procs.is_open(main_index_lock)
        ):
            f = self.finding(
                "stale_lock",
                str(main_index_lock),
                "the main checkout's index.lock is held by no process (an earlier git crashed?)",
                None,
            )
            f.problem = False  # the user's own checkout: report, never touch

    # worktrees of other PA_HOMEs (a worktree root shared through config.toml)
    def _not_foreign(self, admins: list[_Admin]) -> list[_Admin]:
        """Leave out (and report, for information) worktrees another PA_HOME owns: this
        home's sessions table says nothing about them, so they are never orphans here."""
        keep: list[_Admin] = []
        for a in admins:
            other = worktrees.foreign_owner(a.dir, self.home)
            if other is None:
                keep.append(a)
                continue
            self._foreign_heads.add(a.head.removeprefix("ref: refs/heads/").strip())
            if a.path is not None:
                self._foreign_paths.add(_real(str(a.path)))
            f = self.finding(
                "foreign_home_worktree",
                str(a.path),
                f"belongs to a session of another PA_HOME ({other}); left alone",
                None,
            )
            f.problem = False
        return keep

    def _adopt(self, admins: list[_Admin], known: dict[str, Session]) -> None:
        """Mark this home's session worktrees made before worktrees carried an owner, so
        other homes' doctors leave them alone from now on."""
        for a in admins:
            mine = a.path is not None and _real(str(a.path)) in known
            if mine and a.path is not None and worktrees.owner(a.dir) is None:
                with contextlib.suppress(OSError):
                    worktrees.mark_owner(a.path, self.home)

    def _in_use(self, d: Path) -> bool:
        """Is a live process working in ``d``? Then it is not removed (reported instead)."""
        pids = worktrees.cwd_users(d)
        if not pids:
            return False
        f = self.finding(
            "worktree_in_use",
            str(d),
            f"no session owns it, but process(es) {', '.join(map(str, pids[:5]))} work in it;"
            " left alone",
            None,
        )
        f.problem = False
        return True

    # registrations whose folder is gone
    def _prunable(self, admins: list[_Admin], known: dict[str, Session]) -> list[_Admin]:
        keep: list[_Admin] = []
        for a in admins:
            if a.path is not None and a.path.exists():
                keep.append(a)
                continue
            if _is_under(a.path, self.pool_dir) and a.locked is None:
                # Maybe a pool claim killed between rename and repair: find the folder.
                moved = self._find_moved(a, known)
                if moved is not None:
                    f = self.finding(
                        "broken_worktree",
                        str(moved),
                        f"git still records this worktree at {a.path}",
                        "git worktree repair",
                    )
                    if self.repair:
                        r = git.run(["worktree", "repair", str(moved)], self.path, check=False)
                        f.repaired = r.returncode == 0
                        f.error = r.stderr.strip() or None
                        a.path = moved
                    keep.append(a)
                    continue
            if not self._ours(a.path, a.head) or a.locked is not None:
                if a.locked is None:
                    f = self.finding(
                        "prunable_worktree",
                        str(a.path),
                        "git records a worktree whose folder is gone (not pa's)",
                        "git worktree prune",
                    )
                    f.problem = False
                keep.append(a)
                continue
            f = self.finding(
                "prunable_worktree",
                str(a.path),
                f"git records worktree {a.name!r}, but its folder is gone",
                "drop git's record of it",
            )
            if self.repair:
                shutil.rmtree(a.dir, ignore_errors=True)
                f.repaired = not a.dir.exists()
            else:
                keep.append(a)
        return keep

    def _find_moved(self, a: _Admin, known: dict[str, Session]) -> Path | None:
        target = _real(str(a.dir))
        for path in known:
            p = Path(path)
            adm = pool.admin_dir(p)
            if adm is not None and _real(str(adm)) == target:
                return p
        return None

    # worktrees nobody owns
    def _orphan_worktrees(self, admins: list[_Admin], known: dict[str, Session]) -> None:
        for a in admins:
            wt = a.path
            if wt is None or not wt.exists() or _is_under(wt, self.pool_dir):
                continue
            if _real(str(wt)) in known:
                continue
            elsewhere = self._other_session(wt, a.head)
            if elsewhere is not None:
                self._owned_elsewhere(str(wt), elsewhere)
                continue
            if not self._ours(wt, a.head):
                f = self.finding(
                    "foreign_worktree",
                    str(wt),
                    "a worktree pa did not create (left alone)",
                    None,
                )
                f.problem = False
                continue
            if self._in_use(wt):
                continue
            if a.locked is not None:
                f = self.finding(
                    "orphan_worktree",
                    str(wt),
                    f"no session owns this worktree, and it is locked ({a.locked.strip()})",
                    "unlock it (git worktree unlock) and run pa doctor --repair again",
                )
                continue
            f = self.finding(
                "orphan_worktree",
                str(wt),
                "no session owns this worktree",
                f"archive any changes under {ORPHAN_PREFIX}{wt.name}, then remove it",
            )
            if self.repair:
                try:
                    ref = self._archive_worktree(wt, a)
                    pool.unregister_locked(self.common, wt, self.trash)
                    f.repaired = True
                    f.fix = f"archived as {ref}, removed" if ref else "nothing to archive; removed"
                except (PAError, OSError) as e:
                    f.error = str(e)

    def _archive_worktree(self, wt: Path, a: _Admin) -> str | None:
        name = "orphan-" + _safe(wt.name)
        st = git.run(["status", "--porcelain=v1", "-z", "--untracked-files=all"], wt, check=False)
        if st.returncode == 0 and (st.stdout or archive.has_more(wt)):
            # The full archive: ignored files, staging area and nested repos too, and
            # `pa restore ID` (or --archive REF) brings it back.
            snap = archive.snapshot(wt, f"pa doctor: archive of orphan worktree {wt}")
            ref = archive.write_new_ref(self.path, pool.ARCHIVE_PREFIX + name, snap.commit)
            archive.stash_nested(self.path, wt, ref, snap.nested)
            return ref
        if st.returncode != 0:
            # Not a usable worktree (no index, say): snapshot the files as they are.
            return self._archive_dir(wt, name)
        head = git.rev_parse(wt, "HEAD")
        if head and not self._preserved(head):
            ref = pool.unique_ref(self.path, pool.ARCHIVE_PREFIX + name)
            git.run(["update-ref", ref, head], self.path)
            return ref
        return None

    def _preserved(self, commit: str) -> bool:
        """Is ``commit`` reachable from a non-pa branch, a tag, a remote, or a pa ref?"""
        r = git.run(
            [
                "rev-list",
                "-n1",
                commit,
                "--not",
                "--glob=refs/pa/*",
                "--tags",
                "--remotes",
                "--exclude=pa/*",
                "--branches",
            ],
            self.path,
            check=False,
        )
        return r.returncode == 0 and not r.stdout.strip()

    def _archive_dir(self, d: Path, name: str) -> str | None:
        """Snapshot a folder's files (not a usable worktree) as a parentless commit."""
        has_files = any(p.name != ".git" for p in d.iterdir())
        if not has_files:
            return None
        ref = pool.unique_ref(self.path, pool.ARCHIVE_PREFIX + name)
        with tempfile.TemporaryDirectory(prefix="pa-doctor-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **git.PA_IDENTITY}
            base = ["--git-dir", str(self.common), "--work-tree", str(d)]
            git.run([*base, "add", "-A", "--force", "--", "."], d, env=env)
            tree = git.out([*base, "write-tree"], d, env=env)
            commit = git.out(
                ["commit-tree", tree, "-m", f"pa doctor: archive of folder {d}"],
                self.path,
                env=env,
            )
        git.run(["update-ref", ref, commit], self.path)
        return ref

    # folders under the root that git does not know
    def _unregistered_dirs(
        self, dirs: list[Path], admins: list[_Admin], known: dict[str, Session]
    ) -> None:
        registered = {_real(str(a.path)) for a in admins if a.path is not None}
        for d in dirs:
            rd = _real(str(d))
            if rd in registered:
                continue
            s = known.get(rd)
            if s is not None:
                adm = pool.admin_dir(d)
                fixable = adm is not None and adm.is_dir()
                f = self.finding(
                    "broken_worktree",
                    str(d),
                    f"the worktree of session {s.id} is not registered in git",
                    "git worktree repair" if fixable else None,
                )
                if self.repair and fixable:
                    r = git.run(["worktree", "repair", str(d)], self.path, check=False)
                    f.repaired = r.returncode == 0
                    f.error = r.stderr.strip() or None
                continue
            if self._elsewhere(d) or self._in_use(d):
                continue
            f = self.finding(
                "orphan_dir",
                str(d),
                "a folder under the worktree root that neither git nor a session knows",
                f"archive its files under {ORPHAN_PREFIX}{_safe(d.name)}, then remove it",
            )
            if self.repair:
                try:
                    ref = self._archive_dir(d, "orphan-" + _safe(d.name))
                    self.trash.mkdir(parents=True, exist_ok=True)
                    os.rename(d, self.trash / f"{d.name}-{int(time.time() * 1000)}")
                    f.repaired = True
                    f.fix = f"archived as {ref}, removed" if ref else "empty; removed"
                except (PAError, OSError) as e:
                    f.error = str(e)

    def _elsewhere(self, d: Path) -> bool:
        """Is ``d`` a live worktree of another repository (or of another PA_HOME)? A
        shared worktree root holds other homes' repos under the same repo name."""
        if _real(str(d)) in self._foreign_paths:
            return True
        adm = pool.admin_dir(d)
        other = worktrees.foreign_owner(adm, self.home)
        gitdir = _read(adm / "gitdir") if adm is not None else None
        registered = gitdir is not None and _real(str(Path(gitdir).parent)) == _real(str(d))
        if other is None and not registered:
            return False
        f = self.finding(
            "foreign_home_worktree",
            str(d),
            f"a worktree of {'another PA_HOME (' + other + ')' if other else adm}; left alone",
            None,
        )
        f.problem = False
        return True

    # branches nobody owns
    def _orphan_branches(self, branches: dict[str, str], sessions: list[Session]) -> None:
        owned = {s.branch for s in sessions}
        checked_out = {a.head.removeprefix("ref: refs/heads/").strip() for a in self._admins()}
        checked_out.add(git.current_branch(self.path) or "")
        for name, oid in sorted(branches.items()):
            if name in owned:
                continue
            if name in self._foreign_heads:
                continue  # another PA_HOME's session branch (reported with its worktree)
            if name in self._others_by_branch:
                self._owned_elsewhere(name, self._others_by_branch[name])
                continue
            if name in checked_out:
                f = self.finding(
                    "orphan_branch",
                    name,
                    "no session owns this branch, but a worktree pa does not manage uses it",
                    None,
                )
                continue
            ref_name = "orphan-" + _safe(name)
            f = self.finding(
                "orphan_branch",
                name,
                "no session owns this branch",
                f"archive it under {ORPHAN_PREFIX}{_safe(name)} if needed, then delete it",
            )
            if not self.repair:
                continue
            try:
                ref = None
                if not self._preserved(oid):
                    ref = pool.unique_ref(self.path, pool.ARCHIVE_PREFIX + ref_name)
                    git.run(["update-ref", ref, oid], self.path)
                git.run(["update-ref", "-d", f"refs/heads/{name}", oid], self.path)
                f.repaired = True
                f.fix = f"archived as {ref}, deleted" if ref else "already preserved; deleted"
            except PAError as e:
                f.error = e.message

    # the warm pool
    def _pool(self) -> None:
        if not self.pool_dir.exists():
            return
        entries, lone = pool.scan(self.pool_dir)
        base = pool.default_base_commit(self.repo)
        busy = pool.filling(self.pool_dir)
        bad = [e for e in entries if e.marker is None or e.commit != base]
        if busy or not (bad or lone):
            return
        f = self.finding(
            "pool_leftover",
            str(self.pool_dir),
            f"{len(bad)} unfinished or stale warm worktree(s), {len(lone)} lone marker(s)",
            "remove them (archived first when dirty)",
        )
        if self.repair:
            r = pool.tidy(self.app.settings, self.repo)
            f.repaired = not r.busy and not r.errors
            f.error = "; ".join(r.errors) or None


# -- discards ------------------------------------------------------------------------------
def _check_discards(app: App, rep: Report, repair: bool) -> None:
    """A `pa discard` killed after its archive was complete (its ``discarding`` intent is
    recorded) but before the session was marked discarded: finish it from the archive."""
    for s in app.store.sessions():
        intent = s.options.get("discarding")
        if not intent or s.status == Status.DISCARDED:
            continue
        ref = intent.get("ref")
        repo_path = Path(app.store.repo(s.repo_id).path)
        f = rep.add(
            Finding(
                "discard_incomplete",
                s.id,
                f"`pa discard {s.id}` was interrupted; its archive {ref} is complete",
                repo=s.repo_name,
                fix=f"finish the discard (then `pa restore {s.id}` brings it all back)",
            )
        )
        if ref and git.rev_parse(repo_path, ref) != intent.get("commit"):
            f.detail = f"`pa discard {s.id}` was interrupted and its archive {ref} is missing"
            f.fix = None
            continue
        if repair:
            try:
                app.finish_discard(app.store.session(s.id))
                f.repaired = True
            except PAError as e:
                f.error = e.message


# -- sessions ------------------------------------------------------------------------------
def _check_sessions(app: App, rep: Report, repair: bool, grace: float) -> None:
    now = time.time()
    for s in app.store.sessions(statuses=[Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT]):
        if s.interactive:
            continue
        if s.status == Status.STARTING:
            if now - s.updated_at < grace:
                continue
            _stuck_starting(app, rep, repair, s)
        else:
            _maybe_dead(app, rep, s)


def _launch_file(app: App, s: Session, n: int) -> Path | None:
    """The turn's launch.json when a wrapper was started for it (or was about to be)."""
    return app.sup.turn_files(s.id, n).launch()


def _stuck_starting(app: App, rep: Report, repair: bool, s: Session) -> None:
    turns = app.store.turns(s.id)
    last = turns[-1] if turns else None
    launch = _launch_file(app, s, last.n) if last is not None else None
    if last is not None and launch is not None and last.status == "pending":
        # The agent was (or may have been) started: never start it a second time. Hand it
        # to the supervisor, which reads its output and sees whether it finished, runs on
        # or died (then the session is marked interrupted, not silently re-run).
        f = rep.add(
            Finding(
                "stuck_starting",
                s.id,
                f"turn {last.n} was launched but the session never left starting",
                repo=s.repo_name,
                fix="mark it running so the supervisor reads its output and decides",
            )
        )
        if repair:
            with app.store.tx() as db:
                app.store.update_turn(db, s.id, last.n, status="running", started_at=_mtime(launch))
                app.store.set_status(s.id, Status.RUNNING, db=db, error=None)
            f.repaired = True
        return
    repo = app.store.repo(s.repo_id)
    health = _session_worktree(Path(repo.path), s)
    if last is not None:
        f = rep.add(
            Finding(
                "stuck_starting",
                s.id,
                f"stuck in starting with no agent process ({health or 'worktree ok'})",
                repo=s.repo_name,
                fix="queue it again" if health in (None, "fixable") else "mark it failed",
            )
        )
        if not repair:
            return
        if health == "fixable":
            health = _complete_worktree(Path(repo.path), s, pristine=False)
        if health is None:
            files = app.sup.turn_files(s.id, last.n)
            if files.dir.exists():  # an aborted launch: keep it for reference, out of the way
                os.rename(files.dir, files.dir.with_name(f"{last.n}.aborted-{int(time.time())}"))
            app.store.set_status(s.id, Status.QUEUED, error=None)
        else:
            app.store.set_status(
                s.id,
                Status.FAILED,
                error=f"the session could not start: its worktree is {health}; pa discard {s.id}",
            )
        f.repaired = True
        return
    # No turn stored: `pa new` died while creating the worktree, before the prompt was saved.
    f = rep.add(
        Finding(
            "stuck_starting",
            s.id,
            f"pa new was interrupted while creating the worktree ({health or 'worktree complete'})",
            repo=s.repo_name,
            fix="finish or remove the worktree and mark the session failed",
        )
    )
    if not repair:
        return
    if health == "fixable":
        health = _complete_worktree(Path(repo.path), s, pristine=True)
    if health is None:
        msg = (
            "pa new was interrupted before the prompt was saved; the worktree is ready: "
            f"continue with `pa send {s.id} PROMPT`, or `pa discard {s.id}`"
        )
    else:
        _remove_leftovers(Path(repo.path), s, app)
        msg = "pa new was interrupted while creating the worktree; start again with pa new"
    app.store.set_status(s.id, Status.FAILED, error=msg)
    f.repaired = True


def _session_worktree(repo_path: Path, s: Session) -> str | None:
    """None when the session's worktree is complete; "fixable"; or what is wrong."""
    wt = Path(s.worktree)
    if not wt.is_dir():
        return "missing"
    adm = pool.admin_dir(wt)
    if adm is None or not adm.is_dir():
        return "not a git worktree"
    gitdir = _read(adm / "gitdir")
    if gitdir is None or _real(str(Path(gitdir).parent)) != _real(str(wt)):
        return "fixable"
    head = _read(adm / "HEAD") or ""
    if head != f"ref: refs/heads/{s.branch}":
        return (
            "fixable"
            if head in (s.base_commit, f"ref: refs/heads/{s.branch}")
            else (f"on an unexpected HEAD ({head[:60]})")
        )
    if not (adm / "index").exists() or not git.ref_exists(repo_path, f"refs/heads/{s.branch}"):
        return "fixable"
    return None


def _complete_worktree(repo_path: Path, s: Session, *, pristine: bool) -> str | None:
    """Finish an interrupted creation or pool take; None when the worktree is complete."""
    wt = Path(s.worktree)
    adm = pool.admin_dir(wt)
    assert adm is not None
    try:
        git.run(["worktree", "repair", str(wt)], repo_path)
        ref = f"refs/heads/{s.branch}"
        if not git.ref_exists(repo_path, ref):
            git.run(["update-ref", ref, s.base_commit, pool.ZERO_OID], repo_path)
        if (_read(adm / "HEAD") or "") != f"ref: {ref}":
            git.run(["symbolic-ref", "HEAD", ref], wt)
        if not (adm / "index").exists():
            if not pristine:
                return "without an index (its checkout never finished)"
            # Nothing ran here yet (no turn was ever stored): finish the checkout.
            _unlink(adm / "index.lock")
            git.run(["reset", "--hard", "--quiet"], wt)
    except (PAError, OSError) as e:
        return f"broken ({e})"
    return _session_worktree(repo_path, s)


def _remove_leftovers(repo_path: Path, s: Session, app: App) -> None:
    """A never-started session's partial worktree and branch: archive if needed, remove."""
    wt = Path(s.worktree)
    if wt.exists():
        with contextlib.suppress(PAError, OSError):
            pool.archive_dirty(repo_path, wt, f"orphan-{s.id}")
        trash = app.settings.worktree_root / s.repo_name / pool.POOL_DIR / pool.TRASH_DIR
        with contextlib.suppress(PAError, OSError):
            pool.unregister(repo_path, wt, trash)
            pool.empty_trash(trash)
    head = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    if head == s.base_commit:  # the branch holds nothing but the base: nothing to keep
        git.run(["update-ref", "-d", f"refs/heads/{s.branch}", head], repo_path, check=False)


def _maybe_dead(app: App, rep: Report, s: Session) -> None:
    turn = app.store.last_turn(s.id)
    if turn is None or turn.status != "running":
        return
    files = app.sup.turn_files(s.id, turn.n)
    if files.exit_info() is not None:
        return  # finished; the supervisor will read it on its next tick
    from parallel_agents.runtime import local

    wpid = files.wrapper_pid()
    if wpid is not None and local.alive(wpid):
        return
    launch = files.launch()
    if wpid is None and launch is not None and time.time() - _mtime(launch) < 30:
        return
    rep.add(
        Finding(
            "dead_running",
            s.id,
            f"{s.status.value}, but the agent process of turn {turn.n} is gone",
            repo=s.repo_name,
            fix="let the supervisor read what is left and mark it interrupted",
        )
    )


# -- checkpoints ---------------------------------------------------------------------------
def _check_checkpoints(app: App, rep: Report, repair: bool) -> None:
    from parallel_agents.sessions import review as review_service

    refs_by_repo: dict[int, dict[str, str]] = {}
    for s in app.store.sessions():
        if s.status == Status.DISCARDED:
            continue
        turns = app.store.turns(s.id)
        if not turns:
            continue
        repo = app.store.repo(s.repo_id)
        repo_path = Path(repo.path)
        if not (repo_path / ".git").exists():
            continue
        if s.repo_id not in refs_by_repo:
            r = git.run(
                ["for-each-ref", "--format=%(refname) %(objectname)", "refs/pa/sessions/"],
                repo_path,
                check=False,
            )
            found: dict[str, str] = {}
            for line in r.stdout.splitlines():
                name, _, oid = line.partition(" ")
                found[name] = oid
            refs_by_repo[s.repo_id] = found
        refs = refs_by_repo[s.repo_id]
        rows = app.store.checkpoint_commits(s.id)
        for t in turns:
            if t.status not in ENDED_TURN:
                continue
            ref = review_service.turn_ref(s.id, t.n)
            in_git = refs.get(ref)
            in_db = rows.get(t.n)
            if in_git and in_db == in_git:
                continue
            if in_git and in_db is None:
                f = rep.add(
                    Finding(
                        "missing_checkpoint",
                        f"{s.id} turn {t.n}",
                        f"{ref} exists but the store has no record of it",
                        repo=s.repo_name,
                        fix="record it",
                    )
                )
                if repair:
                    app.store.record_checkpoint(s.id, t.n, ref, in_git)
                    f.repaired = True
            elif in_db and not in_git:
                exists = (
                    git.run(
                        ["cat-file", "-e", f"{in_db}^{{commit}}"], repo_path, check=False
                    ).returncode
                    == 0
                )
                f = rep.add(
                    Finding(
                        "missing_checkpoint",
                        f"{s.id} turn {t.n}",
                        f"{ref} is missing in git",
                        repo=s.repo_name,
                        fix="recreate the ref" if exists else None,
                    )
                )
                if repair and exists:
                    git.run(["update-ref", ref, in_db], repo_path)
                    f.repaired = True
            elif in_git and in_db and in_db != in_git:
                f = rep.add(
                    Finding(
                        "missing_checkpoint",
                        f"{s.id} turn {t.n}",
                        "the store and git disagree about this checkpoint",
                        repo=s.repo_name,
                        fix="record git's commit",
                    )
                )
                if repair:
                    app.store.set_checkpoint_commit(s.id, t.n, in_git)
                    f.repaired = True
            else:
                last = t.n == turns[-1].n
                f = rep.add(
                    Finding(
                        "missing_checkpoint",
                        f"{s.id} turn {t.n}",
                        "the turn ended without a checkpoint",
                        repo=s.repo_name,
                        fix="snapshot the worktree now" if last else None,
                    )
                )
                if not last:
                    f.detail += " (a later turn ran since: it cannot be recreated)"
                    f.problem = False
                elif repair:
                    try:
                        commit = review_service.checkpoint_turn(app.store, s, t.n)
                        f.repaired = commit is not None
                        if commit is None:
                            f.error = "the worktree is gone"
                    except PAError as e:
                        f.error = e.message


def _check_stray_processes(app: App, rep: Report, repair: bool) -> None:
    """Processes left by a session that is not running: those its agent started (they
    carry its tag, ``runtime.wrapper.TAG``; ended by --repair) and any other process
    working inside its worktree (someone's shell or editor: reported, never touched)."""
    from parallel_agents.runtime import local
    from parallel_agents.runtime.wrapper import TAG
    from parallel_agents.sessions import interactive

    sessions = {s.id: s for s in app.store.sessions()}

    def live(s: Session) -> bool:
        return s.status.active or (s.interactive and s.status in interactive.LIVE)

    roots = {os.path.realpath(s.worktree): s for s in sessions.values() if not live(s)}
    mine = local.ancestors()
    prefix = f"{TAG}=".encode()
    to_end: dict[str, list[Finding]] = {}
    for name in _pids():
        pid = int(name)
        if pid in mine:
            continue
        try:
            if Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                continue
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        except (OSError, IndexError):
            continue
        tagged = [v[len(prefix) :] for v in env if v.startswith(prefix)]
        tag = tagged[0].decode("utf-8", "replace") if tagged else ""
        owner = sessions.get(tag)  # a tag from another PA_HOME names no session here
        if owner is None:
            owner = next(
                (s for root, s in roots.items() if cwd == root or cwd.startswith(root + "/")),
                None,
            )
            tag = ""
        if owner is None or live(owner):
            continue
        how = "was started by" if tag else "works in the worktree of"
        f = rep.add(
            Finding(
                "stray_process",
                f"pid {pid}",
                f"{cmd.decode('utf-8', 'replace')[:200]} {how} session {owner.id}, which is "
                f"{owner.status.value} (cwd {cwd})",
                repo=owner.repo_name,
                fix="end it (SIGTERM, then SIGKILL)" if tag else None,
            )
        )
        if tag:
            to_end.setdefault(owner.id, []).append(f)
        else:
            f.detail += "; not started by pa, so left alone"
            f.problem = False
    if repair:
        for sid, found in to_end.items():
            local.end_tagged(sid)
            for f in found:
                f.repaired = not _pid_alive(int(f.subject.removeprefix("pid ")))
                if not f.repaired:
                    f.error = "it is still running"


# -- small helpers -------------------------------------------------------------------------
def _check_merge_checkouts(app: App, rep: Report, repair: bool) -> None:
    """Checkouts whose index and files trail their HEAD because a pa merge moved the
    branch and was stopped before it updated them: a commit there would undo the merge."""
    from parallel_agents.git import merging as merge

    for repo in app.store.repos():
        repo_path = Path(repo.path)
        if not (repo_path / ".git").exists():
            continue
        try:
            with merge.merge_lock(repo_path):
                common = git.common_dir(repo_path)
                for co, branch in worktrees.registered_worktrees(repo_path).items():
                    if not branch or not Path(co).is_dir():
                        continue
                    msg = merge.newest_reflog_message(common, branch)
                    if msg.startswith(merge.REFLOG_PREFIX):
                        _merge_checkout(Path(co), repo.name, rep, repair)
        except (PAError, git.GitError) as e:
            rep.add(Finding("repo_error", repo.path, str(e), repo=repo.name))


def _merge_checkout(co: Path, repo_name: str, rep: Report, repair: bool) -> None:
    from parallel_agents.git import merging as merge

    pending = merge.interrupted_sync(co)
    if pending is None:
        return
    branch, old, head = pending
    f = rep.add(
        Finding(
            "merge_checkout_behind",
            str(co),
            f"a pa merge moved {branch} from {old[:12]} to {head[:12]} but was stopped before "
            f"it updated the files in {co}: git status there shows the merge as staged "
            "reverts, and a commit there would undo it",
            repo=repo_name,
            fix=f"update the index and files there (git read-tree -m -u {old} {head}), "
            "keeping local changes",
        )
    )
    if repair:
        try:
            merge.finish_interrupted_sync(co, old, head)
            f.repaired = True
        except PAError as e:
            f.error = f"{e.message}. {e.hint or ''}".strip()


def _read(p: Path) -> str | None:
    try:
        return p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _unlink(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        p.unlink()


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _age(p: Path) -> float:
    m = _mtime(p)
    return time.time() - m if m else 0.0


def _real(p: str) -> str:
    return os.path.realpath(p)


def _is_under(p: Path | None, root: Path) -> bool:
    if p is None:
        return False
    rp, rr = _real(str(p)), _real(str(root))
    return rp == rr or rp.startswith(rr + os.sep)

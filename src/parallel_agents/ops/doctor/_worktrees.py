"""Per repository, under its lock: stale git lock files, worktree registrations whose
folder is gone, worktrees, folders and ``pa/*`` branches no session owns (archived under
``refs/pa/archive/orphan-<name>`` before removal), and leftovers in the warm pool.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.git import archive, pool, worktrees
from parallel_agents.git.archive import ORPHAN_PREFIX
from parallel_agents.git.archive import safe_ref_name as _safe
from parallel_agents.models import Session, Status
from parallel_agents.ops.doctor._files import _age, _is_under, _read, _real, _unlink
from parallel_agents.ops.doctor._processes import _Procs
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.models import Repo
    from parallel_agents.sessions.orchestrator import App



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

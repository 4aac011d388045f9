"""Create, remove, archive and restore session worktrees, safely under concurrency.

Parallel ``git worktree add`` in one repository collides on files under ``.git``
(``commondir``, ``config.lock``). The metadata step is serialised per repository with
an in-process lock plus a file lock (so separate ``pa`` processes cannot collide);
the checkout that fills the files runs outside the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import PAError, UsageError

OWNER_FILE = "pa-owner"  # in the worktree's git dir: the PA_HOME whose session it is

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def repo_lock(repo: Path, name: str = "pa-worktree.lock") -> Iterator[None]:
    """Exclusive per-repository lock across threads and processes.

    ``name`` picks the lock file under the common git dir: merges hold their own lock
    (``pa-merge.lock``) for as long as a whole queue with its checks runs, which must not
    block ``pa new`` nor the check worktrees that take the worktree lock inside it.
    """
    common = _common_dir(repo)
    key = f"{common}\0{name}"
    with _guard:
        tlock = _thread_locks.setdefault(key, threading.Lock())
    with tlock:
        lock_path = common / name
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise PAError(f"cannot create lock file {lock_path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _common_dir(repo: Path) -> Path:
    """``git rev-parse --git-common-dir`` read from the files it reads (no git process on
    the path of every `pa new`); git's own answer when the layout is unusual."""
    dot = repo / ".git"
    try:
        if dot.is_dir():
            gitdir = dot
        else:
            text = dot.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                return git.common_dir(repo)
            gitdir = Path(text[len("gitdir:") :].strip())
            if not gitdir.is_absolute():
                gitdir = repo / gitdir
        try:
            common = gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            common = gitdir
        if not (common / "HEAD").exists():
            return git.common_dir(repo)
        return common.resolve()
    except (OSError, UnicodeDecodeError):
        return git.common_dir(repo)


def _branch_exists(repo: Path, branch: str) -> bool:
    """Does ``refs/heads/<branch>`` exist, read from the ref files (loose or packed) of the
    files backend; git's own answer for any other ref storage (reftable)."""
    ref = f"refs/heads/{branch}"
    common = _common_dir(repo)
    if (common / "reftable").exists() or not (common / "refs").is_dir():
        return git.ref_exists(repo, ref)
    if os.path.lexists(common / ref):
        return True
    try:
        packed = (common / "packed-refs").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return git.ref_exists(repo, ref)
    return f" {ref}\n".encode() in packed


def _checkout_config() -> list[str]:
    """git options for filling a new worktree: a parallel checkout on every core (git's
    own default is one process), which fills big trees up to twice as fast on 2 cores."""
    n = min(os.cpu_count() or 1, 8)
    return ["-c", f"checkout.workers={n}"] if n > 1 else []


def registered_worktrees(repo: Path) -> dict[str, str | None]:
    """Path -> branch (None when detached) for every worktree git knows about."""
    text = git.run(["worktree", "list", "--porcelain"], repo).stdout
    result: dict[str, str | None] = {}
    cur: str | None = None
    for line in text.splitlines():
        if line.startswith("worktree "):
            cur = line[len("worktree ") :]
            result[cur] = None
        elif line.startswith("branch ") and cur is not None:
            result[cur] = line[len("branch ") :].removeprefix("refs/heads/")
    return result


def create(
    repo: Path,
    path: Path,
    branch: str,
    base_commit: str,
    phases: dict[str, float] | None = None,
) -> None:
    """New worktree at ``path`` on new ``branch`` starting at ``base_commit``.

    ``phases`` (if given) receives the seconds each step took: ``lock`` (waiting for the
    repository's worktree lock), ``add`` (git's metadata), ``checkout`` (the files)."""
    if path.exists() and any(path.iterdir()):
        raise PAError(f"worktree path {path} already exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with repo_lock(repo):
        t1 = time.perf_counter()
        if _branch_exists(repo, branch):
            raise PAError(f"branch {branch} already exists", hint="try again: ids are random")
        r = git.run(
            [
                "worktree",
                "add",
                "--no-checkout",
                "--no-track",
                "-b",
                branch,
                str(path),
                base_commit,
            ],
            repo,
            check=False,
        )
        if r.returncode != 0:
            # Never retry blindly: undo exactly what the failed command left behind.
            _undo_failed_add(repo, path, branch, base_commit)
            raise git.GitError(["worktree", "add"], r.returncode, r.stderr)
    t2 = time.perf_counter()
    # Filling the files may overlap with other creations: it touches only this worktree.
    git.run([*_checkout_config(), "reset", "--hard", "--quiet"], path)
    if phases is not None:
        phases.update(lock=t1 - t0, add=t2 - t1, checkout=time.perf_counter() - t2)


def _undo_failed_add(repo: Path, path: Path, branch: str, base_commit: str) -> None:
    known = registered_worktrees(repo)
    if str(path) in known or str(path.resolve()) in known:
        git.run(["worktree", "remove", "--force", str(path)], repo, check=False)
    git.run(["worktree", "prune"], repo, check=False)
    head = git.rev_parse(repo, f"refs/heads/{branch}")
    # Only a branch we just made (still at the base, checked out nowhere) is ours to delete.
    if head == base_commit and branch not in registered_worktrees(repo).values():
        git.run(["branch", "-D", branch], repo, check=False)


COPIED_RECORD = "pa-copied.json"  # in the worktree's own git dir (.git/worktrees/<name>)


def plan_copy(src_root: Path, patterns: list[str]) -> list[str]:
    """The paths (relative to ``src_root``) that ``patterns`` copy, checked before anything
    is created: every match must really be inside the repository (a symlink to /etc in
    the main checkout is refused), and nothing under ``.git`` ever matches."""
    root = src_root.resolve()
    out: list[str] = []
    for pattern in patterns:
        for match in sorted(
            glob.glob(pattern, root_dir=src_root, recursive=True, include_hidden=True)
        ):
            rel = Path(match)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                continue
            if ".git" in rel.parts:
                continue  # git's own files (or a worktree's .git file) are never copied
            real = (src_root / rel).resolve()
            if real != root and not real.is_relative_to(root):
                raise UsageError(
                    f"copy = [{pattern!r}] in .parallel-agents.toml matches {match}, which "
                    f"leads outside the repository (to {real})",
                    hint="copy only files inside the repository; remove that entry",
                )
            if real == root or ".git" in real.relative_to(root).parts:
                continue
            if (src_root / rel).is_dir() or (src_root / rel).is_file():
                out.append(rel.as_posix())
    return list(dict.fromkeys(out))


def copy_untracked(
    src_root: Path, dst_root: Path, patterns: list[str], *, missing_only: bool = False
) -> list[str]:
    """Copy files matching ``patterns`` (e.g. ``.env``) from the main checkout.

    What was copied is recorded in the worktree's git dir, so checkpoints, diffs, merges
    and pull requests leave those files out unless the agent changed them. With
    ``missing_only`` (a restored worktree) paths that exist already are left alone.
    """
    copied: list[str] = []
    existing: list[str] = []  # there already (restored): watched, not overwritten
    dst_real = dst_root.resolve()
    for match in plan_copy(src_root, patterns):
        src = src_root / match
        dst = dst_root / match
        if missing_only and os.path.lexists(dst):
            existing.append(match)
            continue
        # The destination must not lead out of the worktree either (a committed symlink).
        parent = dst.parent.resolve()
        if parent != dst_real and not parent.is_relative_to(dst_real):
            raise UsageError(
                f"cannot copy {match}: in the worktree it would land outside it (at {parent})",
                hint="remove that entry from copy = [...] in .parallel-agents.toml",
            )
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        copied.append(match)
    if copied or existing:
        _record_copied(dst_root, copied, src_root, existing)
    return copied


def _copied_files(root: Path, copied: list[str]) -> list[str]:
    """Every file and symlink under the copied paths, relative to ``root``."""
    files: list[str] = []
    for rel in copied:
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            for d, dirs, names in os.walk(p):
                dirs[:] = [x for x in dirs if x != ".git"]
                for n in names + [x for x in dirs if (Path(d) / x).is_symlink()]:
                    files.append((Path(d) / n).relative_to(root).as_posix())
        else:
            files.append(rel)
    return sorted(set(files))


def _fingerprint(p: Path) -> dict[str, Any] | None:
    try:
        st = os.lstat(p)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return {"link": os.readlink(p)}
    if not stat.S_ISREG(st.st_mode):
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(p)}


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _record_path(worktree: Path) -> Path:
    rel = git.out(["rev-parse", "--git-path", COPIED_RECORD], worktree)
    p = Path(rel)
    return p if p.is_absolute() else worktree / p


def _record_copied(worktree: Path, copied: list[str], src_root: Path, existing: list[str]) -> None:
    """Record the fingerprints of the copied files; for ``existing`` ones (a restored
    worktree) those of the main checkout's version, so a file the agent had changed
    counts as changed (merged with a warning) and an unchanged one stays out."""
    origin = {f: worktree / f for f in _copied_files(worktree, copied)}
    for f in _copied_files(src_root, existing):
        origin.setdefault(f, src_root / f)
    files = sorted(origin)
    if files:
        # Ignored files never reach a commit anyway: no need to watch them.
        r = git.run(
            ["check-ignore", "-z", "--stdin"], worktree, check=False, input="\0".join(files)
        )
        ignored = set(r.stdout.split("\0")) if r.returncode == 0 else set()
        files = [f for f in files if f not in ignored]
    record = {f: fp for f in files if (fp := _fingerprint(origin[f])) is not None}
    path = _record_path(worktree)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"files": record}), encoding="utf-8")
    os.replace(tmp, path)


def copied_files(worktree: Path) -> dict[str, dict[str, Any]]:
    """The files `copy = [...]` put into ``worktree`` (path -> fingerprint at copy time)."""
    try:
        data = json.loads(_record_path(worktree).read_text(encoding="utf-8"))
    except (OSError, ValueError, git.GitError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return dict(files) if isinstance(files, dict) else {}


def copied_unchanged(worktree: Path) -> list[str]:
    """Copied files still exactly as copied: they stay out of checkpoints and merges."""
    out: list[str] = []
    for rel, was in copied_files(worktree).items():
        p = worktree / rel
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if "link" in was:
            if stat.S_ISLNK(st.st_mode) and os.readlink(p) == was["link"]:
                out.append(rel)
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        # Same size and mtime as copied: unchanged without reading it; else compare content.
        if st.st_size == was.get("size") and (
            st.st_mtime_ns == was.get("mtime_ns") or _sha256(p) == was.get("sha256")
        ):
            out.append(rel)
    return out


def remove(repo: Path, path: Path, branch: str | None, *, delete_branch: bool = True) -> None:
    """Remove the worktree (if it still exists) and its branch."""
    with repo_lock(repo):
        known = registered_worktrees(repo)
        if str(path) in known or str(path.resolve()) in known:
            r = git.run(["worktree", "remove", "--force", "--force", str(path)], repo, check=False)
            if r.returncode != 0 and path.exists():
                shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)
        git.run(["worktree", "prune"], repo, check=False)
        if delete_branch and branch and git.ref_exists(repo, f"refs/heads/{branch}"):
            git.run(["branch", "-D", branch], repo)


def add_on_branch(repo: Path, path: Path, branch: str) -> None:
    """A worktree at ``path`` on the existing ``branch`` (issue 16 §4: no new branch).
    Refuses when another worktree (the main checkout included) has it checked out."""
    if path.exists() and any(path.iterdir()):
        raise PAError(f"worktree path {path} already exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    with repo_lock(repo):
        for where, b in registered_worktrees(repo).items():
            if b == branch:
                raise UsageError(
                    f"branch {branch} is checked out in {where}",
                    hint="switch that checkout to another branch (or finish that session), "
                    "then start again",
                )
        git.run(["worktree", "add", "--no-checkout", str(path), branch], repo)
    git.run(["reset", "--hard", "--quiet"], path)


def attach(repo: Path, path: Path, branch: str, commit: str) -> None:
    """Recreate a worktree for ``branch`` at ``commit`` (used by restore)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with repo_lock(repo):
        git.run(["worktree", "prune"], repo, check=False)
        if git.ref_exists(repo, f"refs/heads/{branch}"):
            git.run(["update-ref", f"refs/heads/{branch}", commit], repo)
            git.run(["worktree", "add", "--no-checkout", str(path), branch], repo)
        else:
            git.run(
                ["worktree", "add", "--no-checkout", "--no-track", "-b", branch, str(path), commit],
                repo,
            )
    git.run(["reset", "--hard", "--quiet"], path)


# -- ownership ---------------------------------------------------------------------------
# Every PA_HOME may share one worktree root (config.toml is per user, not per home): a
# worktree records which home made it, so one home's doctor or pool never removes
# another's. The mark lives in git's private folder of the worktree
# (.git/worktrees/<name>/pa-owner): it moves with a pool claim and never shows in
# ``git status``.
def admin_dir(wt: Path) -> Path | None:
    """The worktree's private directory under ``.git/worktrees/``, from its ``.git`` file."""
    try:
        text = (wt / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    p = Path(text[len("gitdir:") :].strip())
    if not p.is_absolute():
        p = (wt / p).resolve()
    return p if p.parent.name == "worktrees" else None


def mark_owner(wt: Path, home: Path) -> None:
    """Record ``home`` as the owner of worktree ``wt`` (atomically; no-op if not one)."""
    adm = admin_dir(wt)
    if adm is None or not adm.is_dir():
        return
    tmp = adm / f"{OWNER_FILE}.{os.getpid()}.tmp"
    tmp.write_text(os.path.realpath(home) + "\n", encoding="utf-8")
    os.replace(tmp, adm / OWNER_FILE)


def owner(admin: Path | None) -> str | None:
    """The PA_HOME recorded in a worktree's git dir; None when unmarked (an older pa, or a
    worktree pa did not make)."""
    if admin is None:
        return None
    try:
        text = (admin / OWNER_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def foreign_owner(admin: Path | None, home: Path) -> str | None:
    """The other PA_HOME that owns this worktree, or None when it is ours or unmarked."""
    o = owner(admin)
    if o is None or o == os.path.realpath(home):
        return None
    return o


def cwd_users(path: Path) -> list[int]:
    """Pids of live processes whose working directory is ``path`` or below it."""
    root = os.path.realpath(path)
    found: list[int] = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        cwd = cwd.removesuffix(" (deleted)")
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(pid)
    return found

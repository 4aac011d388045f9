"""Pairing mode (issue 16 §5): the user's main checkout shows a session's files.

`pa pair ID` records a restore point FIRST (``<PA_HOME>/pairing/<repo id>.json``: the
checkout's branch or detached commit, its HEAD, that it was clean), then moves the
checkout onto a temporary branch ``pa/pair/<sid>`` at a snapshot of the session's
worktree (``git/snapshots.checkpoint``: the agent's files are never touched) with a
two-way ``read-tree -m -u``: git itself refuses to overwrite a file that is not as
the old tree has it, so nothing of the user's is ever written over.

The server's loop calls ``sync_all`` every SYNC_EVERY seconds: a pairing whose session
changed moves on in one locked step, the record naming the target before the files
move, so a kill -9 in the middle leaves a checkout whose every path is one of the
trees the record names. When the checkout holds anything else (the user edited a
file, committed, switched branch) syncing stops and `pa pair status` says why.

`pa pair --stop` puts back the branch (or detached HEAD), HEAD, index and files, and
deletes the temporary branch; it refuses when the user changed something pa would
lose. Their way out: commit on the temporary branch, then `--stop --keep` restores the
checkout and leaves the branch (with their commit) in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import Conflict, NotFound, UsageError
from parallel_agents.models import Session
from parallel_agents.store import Store

SYNC_EVERY = 2.0  # seconds between the loop's looks at paired sessions


def folder(home: Path) -> Path:
    return home / "pairing"


def record_path(home: Path, repo_id: str | int) -> Path:
    return folder(home) / f"{repo_id}.json"


def temp_branch(sid: str) -> str:
    return f"pa/pair/{sid}"


def _pair_ref(sid: str) -> str:
    return f"refs/pa/sessions/{sid}/pair"


# -- the record --------------------------------------------------------------------------
def records(home: Path) -> list[dict[str, Any]]:
    """Every pairing record of this PA_HOME (a broken file is reported, not dropped)."""
    d = folder(home)
    if not d.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for p in sorted(d.glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            rec = {"broken": True}
        rec["record"] = str(p)
        out.append(rec)
    return out


def _write(path: Path, rec: dict[str, Any]) -> None:
    """Durably: a crash leaves the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = {k: v for k, v in rec.items() if k != "record"}
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(home: Path, repo_id: str | int) -> Iterator[None]:
    """One pairing step at a time per checkout (the loop's sync and a stop)."""
    folder(home).mkdir(parents=True, exist_ok=True)
    with open(folder(home) / f"{repo_id}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- trees -------------------------------------------------------------------------------
def _dirty(repo: Path) -> list[str]:
    """Modified, staged and untracked (not ignored) paths of ``repo``."""
    raw = git.status_porcelain(repo)
    paths: list[str] = []
    parts = raw.split(b"\0") if isinstance(raw, bytes) else str(raw).split("\0")
    skip = False
    for part in parts:
        if skip:
            skip = False
            continue
        if not part:
            continue
        text = part.decode("utf-8", "surrogateescape") if isinstance(part, bytes) else part
        paths.append(text[3:])
        if text[:1] in ("R", "C"):
            skip = True  # the rename's source follows
    return paths


def _checkout_tree(repo: Path) -> str:
    """Tree of everything in the checkout git would add (not ignored); index untouched."""
    from parallel_agents.git import snapshots

    with git.temp_index(repo) as env:
        return snapshots.snapshot_tree(repo, env)


def _entries(repo: Path, tree: str) -> dict[str, str]:
    raw = git.run(["ls-tree", "-r", "-z", "--full-tree", tree], repo).stdout
    text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw)
    out: dict[str, str] = {}
    for line in text.split("\0"):
        if line:
            meta, path = line.split("\t", 1)
            mode, _, oid = meta.split(" ")
            out[path] = f"{mode} {oid}"
    return out


def _unexplained(repo: Path, tree: str, known: list[str]) -> list[str]:
    """Paths where the checkout's ``tree`` matches none of the ``known`` trees (absent
    counts): what only the user can have put there."""
    have = _entries(repo, tree)
    trees = [_entries(repo, k) for k in dict.fromkeys(known)]
    paths = set(have).union(*[set(t) for t in trees])
    return sorted(p for p in paths if all(have.get(p) != t.get(p) for t in trees))


def _known(repo: Path, rec: dict[str, Any]) -> list[str]:
    commits = [rec["head"], rec.get("synced"), rec.get("syncing_to")]
    return [git.tree_of(repo, c) for c in commits if c]


def _session_commit(s: Session, same_as: str | None = None) -> str:
    """A commit of the session's worktree as it is now (``git/snapshots``: its HEAD,
    index and files untouched); ``same_as`` when that commit's tree already is it, so a
    pass that finds nothing new writes no object."""
    from parallel_agents.git import snapshots
    from parallel_agents.git.worktrees import copied_unchanged

    wt = Path(s.worktree)
    if not (wt.is_dir() and (wt / ".git").exists()):
        raise NotFound(f"session {s.id}'s worktree {wt} is gone: there is nothing to pair with")
    with git.temp_index(wt) as env:
        tree = snapshots.snapshot_tree(wt, env, copied_unchanged(wt))
    if same_as is not None and git.tree_of(wt, same_as) == tree:
        return same_as
    head = git.resolve(wt, "HEAD")
    commit = git.commit_tree(wt, tree, [head] if head else [], f"pa pairing snapshot of {s.id}")
    git.run(["update-ref", "-m", "pa pair", _pair_ref(s.id), commit], wt)
    return commit


def _collisions(repo: Path, old: str, new: str) -> list[str]:
    """Paths ``new`` adds where the checkout already has something (an ignored file of
    the user's: the checkout is clean otherwise), or under a file there: git may write
    over ignored files, pa never does."""
    before = _entries(repo, git.tree_of(repo, old))
    hit: list[str] = []
    for p in sorted(set(_entries(repo, git.tree_of(repo, new))) - set(before)):
        parts = p.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            full = repo / sub
            if i < len(parts) and (full.is_dir() and not full.is_symlink()):
                continue
            if os.path.lexists(full) and sub not in before:
                hit.append(sub)
            break
    return sorted(set(hit))


def _move(repo: Path, rec: dict[str, Any], path: Path, new: str) -> None:
    """Checkout from ``rec['synced']`` to commit ``new``: the target is recorded first,
    then the files move (two-way merge: git refuses to overwrite what is not as the old
    tree has it), then the branch, then the record says it is done."""
    old = rec["synced"]
    hit = _collisions(repo, old, new)
    if hit:
        raise Conflict(
            f"the session has files where {repo} has ignored files of yours: "
            + ", ".join(hit[:10]),
            hint="move those files away, then pair again",
        )
    rec["syncing_to"] = new
    _write(path, rec)
    try:
        git.run(["read-tree", "-m", "-u", old, new], repo)
    except git.GitError:
        # read-tree checks every path before it writes one: refused, nothing moved.
        rec["syncing_to"] = None
        _write(path, rec)
        raise
    branch = f"refs/heads/{rec['temp_branch']}"
    git.run(["update-ref", "-m", "pa pair", branch, new], repo)
    git.run(["symbolic-ref", "-m", "pa pair", "HEAD", branch], repo)
    rec["synced"] = new
    rec["syncing_to"] = None
    rec["synced_at"] = time.time()
    _write(path, rec)


# -- the verbs ---------------------------------------------------------------------------
def _find(home: Path, sid: str | None, repo_id: str | None = None) -> dict[str, Any]:
    recs = [r for r in records(home) if not r.get("broken")]
    if sid:
        recs = [r for r in recs if str(r.get("sid", "")).startswith(sid)]
    if repo_id:
        recs = [r for r in recs if r.get("repo_id") == repo_id]
    if not recs:
        raise NotFound(
            f"no pairing of session {sid}" if sid else "no pairing is active",
            hint="`pa pair status` lists them; `pa pair ID` starts one",
        )
    if len(recs) > 1:
        raise UsageError(
            "more than one pairing is active: name the session",
            hint="`pa pair status` lists them",
        )
    return recs[0]


def start(store: Store, home: Path, s: Session) -> dict[str, Any]:
    """Pair session ``s`` with its repository's main checkout."""
    repo = Path(store.repo(s.repo_id).path)
    path = record_path(home, s.repo_id)
    with _locked(home, s.repo_id):
        if path.exists():
            other = json.loads(path.read_text()).get("sid")
            raise Conflict(
                f"{repo} is already paired with session {other}",
                hint=f"`pa pair --stop {other}` first",
            )
        dirty = _dirty(repo)
        if dirty:
            shown = "\n  ".join(dirty[:20]) + ("\n  …" if len(dirty) > 20 else "")
            raise Conflict(
                f"{repo} has changes pairing could overwrite:\n  {shown}",
                hint="commit or stash them first (pairing needs a clean checkout)",
            )
        head = git.rev_parse(repo, "HEAD")
        if head is None:
            raise UsageError(f"{repo} has no commit yet: there is nothing to return to")
        new = _session_commit(s)
        rec: dict[str, Any] = {
            "sid": s.id,
            "repo_id": s.repo_id,
            "repo": str(repo),
            "worktree": s.worktree,
            "branch": git.current_branch(repo),  # None: HEAD was detached
            "head": head,
            "was_clean": True,
            "temp_branch": temp_branch(s.id),
            "synced": head,  # the commit whose tree the checkout has
            "syncing_to": None,
            "diverged": None,
            "started_at": time.time(),
        }
        _write(path, rec)  # the restore point, before anything moves
        try:
            _move(repo, rec, path, new)
        except Conflict:
            path.unlink()  # refused before anything moved: no pairing
            raise
        except git.GitError as e:
            if rec["syncing_to"] is not None:
                raise  # files moved, a later step failed: the record stays for --stop
            path.unlink()  # read-tree refused before anything moved: no pairing
            raise Conflict(
                f"git refused to put session {s.id}'s files in {repo}: {e.stderr.strip()}",
                hint="an ignored or untracked file of yours is where the agent has a file: "
                "move it away and pair again",
            ) from None
    return status_of(home, rec)


def sync(store: Store, home: Path, rec: dict[str, Any]) -> str:
    """One sync step of a pairing; returns what happened (``same``, ``moved``,
    ``diverged``)."""
    repo_id = str(rec["repo_id"])
    path = record_path(home, repo_id)
    with _locked(home, repo_id):
        if not path.exists():
            return "stopped"
        rec = json.loads(path.read_text())
        if rec.get("diverged"):
            return "diverged"
        repo = Path(rec["repo"])
        interrupted = bool(rec.get("syncing_to"))
        why = _drift(repo, rec)
        if why or interrupted:
            rec["diverged"] = why
            _write(path, rec)  # an interrupted step finished, or why syncing stopped
        if why:
            return "diverged"
        try:
            s = store.session(rec["sid"])
            new = _session_commit(s, same_as=rec["synced"])
        except NotFound:
            return "same"
        if new == rec["synced"]:
            return "same"
        try:
            _move(repo, rec, path, new)
        except Conflict as e:
            rec["diverged"] = f"{e.message}: pa stopped syncing"
            _write(path, rec)
            return "diverged"
        except git.GitError as e:
            rec["diverged"] = f"git refused to update the checkout: {e}"
            _write(path, rec)
            return "diverged"
        return "moved"


def _drift(repo: Path, rec: dict[str, Any]) -> str | None:
    """Why the checkout is no longer pa's to move (None: it is)."""
    tb = rec["temp_branch"]
    if git.current_branch(repo) != tb:
        return f"the checkout left {tb}: pa stopped syncing"
    if rec.get("syncing_to"):
        # A sync step was cut short: finish it when the files got there, else stop.
        tree = _checkout_tree(repo)
        if tree == git.tree_of(repo, rec["syncing_to"]):
            rec["synced"], rec["syncing_to"] = rec["syncing_to"], None
            git.run(["update-ref", f"refs/heads/{tb}", rec["synced"]], repo)
            git.run(["read-tree", rec["synced"]], repo)
        elif tree != git.tree_of(repo, rec["synced"]):
            return "a sync step was interrupted: `pa pair --stop` puts the checkout back"
        else:
            rec["syncing_to"] = None
    if git.rev_parse(repo, "HEAD") != rec["synced"]:
        return f"someone committed on {tb}: pa stopped syncing"
    changed = _dirty(repo)
    if changed:
        shown = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
        return f"the checkout has edits pa did not make ({shown}): pa stopped syncing"
    return None


def sync_all(store: Store, home: Path) -> int:
    """A sync step for every pairing of this PA_HOME (the server's loop); moves made."""
    moved = 0
    for rec in records(home):
        if rec.get("broken") or rec.get("diverged"):
            continue
        if sync(store, home, rec) == "moved":
            moved += 1
    return moved


def blocker(rec: dict[str, Any], *, keep: bool = False) -> Conflict | None:
    """Why `pa pair --stop` would refuse ``rec`` (None: it would lose nothing)."""
    repo = Path(rec["repo"])
    tb = rec["temp_branch"]
    hint = (
        f"to keep them: commit them on {tb} (git -C {repo} add -A && git commit), then "
        f"`pa pair --stop {rec['sid']} --keep` puts the checkout back and leaves {tb}"
    )
    extra = _unexplained(repo, _checkout_tree(repo), _known(repo, rec))
    if extra and not (keep and not _dirty(repo)):
        shown = "\n  ".join(extra[:20]) + ("\n  …" if len(extra) > 20 else "")
        return Conflict(
            f"{repo} has changes pa did not make; nothing was touched:\n  {shown}", hint=hint
        )
    tip = git.rev_parse(repo, f"refs/heads/{tb}")
    ours = {rec["head"], rec.get("synced"), rec.get("syncing_to")}
    if tip is not None and tip not in ours and not keep:
        return Conflict(f"{tb} has commits pa did not make; nothing was touched", hint=hint)
    return None


def stop(home: Path, sid: str | None, *, keep: bool = False) -> dict[str, Any]:
    """Put the main checkout back exactly as the restore point has it."""
    rec = _find(home, sid)
    repo_id = str(rec["repo_id"])
    path = record_path(home, repo_id)
    with _locked(home, repo_id):
        rec = json.loads(path.read_text())
        repo = Path(rec["repo"])
        tb = rec["temp_branch"]
        why = blocker(rec, keep=keep)
        if why is not None:
            raise why
        tip = git.rev_parse(repo, f"refs/heads/{tb}")
        _restore(repo, rec)
        if not keep and tip is not None:
            git.run(["update-ref", "-d", f"refs/heads/{tb}"], repo)
        path.unlink()
    return {
        "sid": rec["sid"],
        "repo": str(repo),
        "branch": rec["branch"],
        "head": git.rev_parse(repo, "HEAD"),
        "head_at_pair": rec["head"],
        "kept_branch": tb if keep and tip is not None else None,
    }


def _restore(repo: Path, rec: dict[str, Any]) -> None:
    """Files, HEAD and index back to the restore point (idempotent: a kill -9 in the
    middle and a second run end the same)."""
    from parallel_agents.git import snapshots

    head = rec["head"]
    if rec.get("branch"):
        # The branch may have moved meanwhile (`pa merge` onto it): the checkout returns
        # to the branch as it is now, as it would have followed it had it stayed there.
        now = git.rev_parse(repo, f"refs/heads/{rec['branch']}")
        if now is None:  # deleted meanwhile: back where it was
            git.run(["update-ref", f"refs/heads/{rec['branch']}", head], repo)
        head = now or head
    with git.temp_index(repo) as env:
        # The temporary index lists every file not ignored; a one-tree reset rewrites
        # those to the restore point and deletes the ones it does not have.
        snapshots.snapshot_tree(repo, env)
        git.run(["read-tree", "--reset", "-u", head], repo, env=env)
    if rec.get("branch"):
        ref = f"refs/heads/{rec['branch']}"
        git.run(["symbolic-ref", "-m", "pa pair --stop", "HEAD", ref], repo)
    else:
        git.run(["update-ref", "--no-deref", "-m", "pa pair --stop", "HEAD", head], repo)
    git.run(["read-tree", head], repo)
    git.run(["update-index", "-q", "--refresh"], repo, check=False)


def status_of(home: Path, rec: dict[str, Any]) -> dict[str, Any]:
    d = {k: v for k, v in rec.items() if k != "record"}
    d["syncing"] = not rec.get("diverged") and not rec.get("broken")
    d["record"] = str(record_path(home, str(rec.get("repo_id"))))
    return d


def status(home: Path, sid: str | None = None) -> list[dict[str, Any]]:
    recs = records(home)
    if sid:
        recs = [r for r in recs if str(r.get("sid", "")).startswith(sid)]
    return [status_of(home, r) for r in recs]

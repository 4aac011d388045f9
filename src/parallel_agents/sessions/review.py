"""Review verbs on sessions: checkpoints per turn, diffs, checks, rollback, conflicts.

The git-level work lives in ``git`` (``snapshots``, ``forecast``, ``merging``…) and
the check runner in ``runtime.checks``; this module maps sessions and turns onto refs
and records results in the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.config import Settings, load_repo_config
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.models import EventKind, Session, Status
from parallel_agents.store import Store

ACTIVE = (Status.QUEUED, Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT)


def turn_ref(sid: str, n: int) -> str:
    return f"refs/pa/sessions/{sid}/turns/{n}"


def live_ref(sid: str) -> str:
    return f"refs/pa/sessions/{sid}/live"


def turn_start_ref(sid: str, n: int) -> str:
    """Where turn ``n`` started when that is not turn ``n - 1``'s end (after a rollback)."""
    return f"refs/pa/sessions/{sid}/turn-starts/{n}"


def _worktree_ok(s: Session) -> bool:
    wt = Path(s.worktree)
    return wt.is_dir() and (wt / ".git").exists()


def checkpoint_turn(store: Store, s: Session, n: int) -> str | None:
    """Snapshot the worktree at the end of turn ``n`` (no-op when the worktree is gone)."""
    from parallel_agents.git import snapshots

    if not _worktree_ok(s):
        return None
    ref = turn_ref(s.id, n)
    commit = snapshots.checkpoint(Path(s.worktree), ref, f"pa checkpoint: {s.title} (turn {n})")
    store.record_checkpoint(s.id, n, ref, commit)
    return commit


def snapshot(store: Store, s: Session) -> tuple[str, str | None]:
    """Commit for the session's current state; a note when the worktree is gone."""
    from parallel_agents.git import snapshots

    repo_path = Path(store.repo(s.repo_id).path)
    if _worktree_ok(s):
        return snapshots.checkpoint(
            Path(s.worktree), live_ref(s.id), f"pa snapshot of {s.id}"
        ), None
    archive = (s.options.get("archive") or {}).get("commit")
    if archive:
        return str(archive), f"note: session {s.id} is discarded; showing its archived state"
    head = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    if head is None:
        raise NotFound(f"session {s.id} has neither a worktree nor a branch left")
    return head, f"note: the worktree {s.worktree} is missing; showing the branch's commits only"


def diff_range(store: Store, s: Session, turn: int | None) -> tuple[str, str, str | None]:
    """(base, target, note) of what the session (or one turn) changed."""
    from parallel_agents.git import diffs
    from parallel_agents.sessions.repos import require_repo

    repo_path = require_repo(store, s)
    if turn is None:
        nested = diffs.nested_scan(Path(s.worktree)) if _worktree_ok(s) else None
        target, note = snapshot(store, s)
        return s.base_commit, target, _with_nested_note(s, note, nested)
    start, end = _turn_range(store, s, turn, repo_path)
    note = None
    if end is None:
        end, note = snapshot(store, s)  # the turn is still running: show it so far
    return start, end, note


def diff_text(
    store: Store, s: Session, turn: int | None, *, stat: bool = False, name_only: bool = False
) -> tuple[Iterator[str], str | None]:
    """The patch (or ``stat``, or the changed paths) of what the session (or one turn)
    changed, streamed, and its note. The worktree's state is diffed the way a checkpoint
    sees it, without making one: ``diffs.live_stream`` (one `git diff BASE` while the
    worktree holds nothing untracked), or a throwaway index when copied files must stay
    out."""
    from parallel_agents.git import diffs
    from parallel_agents.git.worktrees import COPIED_RECORD, copied_unchanged
    from parallel_agents.sessions.repos import require_repo

    repo_path = require_repo(store, s)
    start, end = s.base_commit, None
    if turn is not None:
        start, end = _turn_range(store, s, turn, repo_path)
    if end is None and _worktree_ok(s):
        wt = Path(s.worktree)
        # No record of copied files (the usual case): nothing to keep out, no git call.
        copied = (diffs.git_dir(wt) / COPIED_RECORD).exists()
        if not copied:
            chunks, found = diffs.live_stream(wt, start, stat=stat, name_only=name_only)
            return chunks, _with_nested_note(s, None, lambda: found)
        nested = diffs.nested_scan(wt) if turn is None else None  # beside git's own walk
        chunks = diffs.worktree_stream(
            wt,
            start,
            exclude=copied_unchanged(wt) if copied else (),
            stat=stat,
            name_only=name_only,
        )
        return chunks, _with_nested_note(s, None, nested)
    if end is None:
        end, note = snapshot(store, s)
        if turn is None:
            note = _with_nested_note(s, note)
    else:
        note = None
    return diffs.diff_stream(repo_path, start, end, stat=stat, name_only=name_only), note


def diff_argv(store: Store, s: Session, *, stat: bool = False) -> tuple[Path, list[str]] | None:
    """(worktree, git argv) that prints the session's whole patch (or ``stat``) exactly as
    ``diff_text`` would stream it, for a client on this machine to run itself; None when
    ``diff_text`` has more to do than one `git diff` (see ``diffs.live_argv``)."""
    from parallel_agents.git import diffs
    from parallel_agents.git.worktrees import COPIED_RECORD
    from parallel_agents.sessions.repos import require_repo

    require_repo(store, s)
    if not _worktree_ok(s):
        return None
    wt = Path(s.worktree)
    if (diffs.git_dir(wt) / COPIED_RECORD).exists():
        return None
    argv = diffs.live_argv(wt, s.base_commit, stat=stat)
    return (wt, argv) if argv is not None else None


def _turn_range(store: Store, s: Session, turn: int, repo_path: Path) -> tuple[str, str | None]:
    """(start, end) of one turn; end None while the last turn runs without a checkpoint."""
    n_turns = len(store.turns(s.id))
    if not 1 <= turn <= n_turns:
        raise UsageError(
            f"session {s.id} has no turn {turn}", hint=f"it has {n_turns} turn(s): 1..{n_turns}"
        )
    # One git process for every ref the range may need.
    end, restart, prev = _resolve_many(
        repo_path, [turn_ref(s.id, turn), turn_start_ref(s.id, turn), turn_ref(s.id, turn - 1)]
    )
    if end is None and turn != n_turns:
        raise UsageError(f"session {s.id} has no checkpoint for turn {turn}")
    # A turn's diff is its own: after a rollback it starts from the rollback's target.
    start = restart or (s.base_commit if turn == 1 else prev)
    if start is None:
        raise UsageError(f"session {s.id} has no checkpoint for turn {turn - 1}")
    return start, end


def _resolve_many(repo: Path, revs: list[str]) -> list[str | None]:
    """``git.rev_parse`` of each of ``revs`` (full ref names), in one git process."""
    data = "".join(f"{r}^{{commit}}\n" for r in revs).encode()
    out = git.run(["cat-file", "--batch-check=%(objectname) %(objecttype)"], repo, input=data)
    res: list[str | None] = []
    for line in out.text.splitlines():
        oid, _, kind = line.partition(" ")
        res.append(oid if kind == "commit" else None)  # "<rev> missing" names nothing
    return res


def _with_nested_note(
    s: Session, note: str | None, nested: Callable[[], list[str]] | None = None
) -> str | None:
    """Nested repositories are only gitlinks to the session's repo: say what they hold."""
    from parallel_agents.git import archive

    if not _worktree_ok(s):
        return note
    found = archive.nested_note(Path(s.worktree), nested() if nested is not None else None)
    return "\n".join(n for n in (note, found) if n) or None


# -- checks --------------------------------------------------------------------------------
def check_command(store: Store, s: Session, override: str | None) -> str:
    if override:
        return override
    cmd = load_repo_config(Path(store.repo(s.repo_id).path)).check
    if not cmd:
        raise UsageError(
            f"no check command for repo {s.repo_name}",
            hint='add `check = "pytest -q"` to .parallel-agents.toml or pass --check CMD',
        )
    return cmd


def run_check(
    store: Store,
    settings: Settings,
    s: Session,
    command: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the repo's check in the session's worktree and store the result."""
    from parallel_agents.runtime import checks
    from parallel_agents.sessions.repos import require_usable

    if not _worktree_ok(s):
        raise Conflict(f"the worktree of session {s.id} is gone", hint=f"pa restore {s.id}")
    require_usable(store, s)
    cmd = check_command(store, s, command)
    commit, _ = snapshot(store, s)
    limit = float(timeout or settings.get("check.timeout") or 600)
    env = load_repo_config(Path(store.repo(s.repo_id).path)).env
    res = checks.run_check(Path(s.worktree), cmd, limit, env=env)
    turn = len(store.turns(s.id))
    record = {
        "session_id": s.id,
        "turn": turn,
        "commit": commit,
        "command": cmd,
        "ok": res.ok,
        "exit_code": res.exit_code,
        "timed_out": res.timed_out,
        "duration_s": round(res.duration_s, 3),
        "output_tail": res.output_tail,
    }
    store.record_check(
        s.id,
        turn,
        commit,
        cmd,
        res.ok,
        res.exit_code,
        res.timed_out,
        res.duration_s,
        res.output_tail,
        {k: v for k, v in record.items() if k != "session_id"},
    )
    return record


def last_check(store: Store, sid: str) -> dict[str, Any] | None:
    return store.last_check(sid)


def check_summaries(store: Store) -> dict[str, dict[str, Any]]:
    """The latest check of every session that has one, in one query (for listings)."""
    return store.check_summaries()


def wait_for_index_lock(worktree: Path, timeout: float = 5.0) -> None:
    """Refuse, before touching anything, while another git process holds the index lock."""
    rel = git.out(["rev-parse", "--git-path", "index.lock"], worktree)
    lock = Path(rel) if Path(rel).is_absolute() else worktree / rel
    deadline = time.monotonic() + timeout
    while lock.exists():
        if time.monotonic() > deadline:
            raise Conflict(
                f"{lock} is held by another git process; nothing was changed",
                hint="wait for that git command to finish (or delete the lock if no git "
                "process is running) and try again",
            )
        time.sleep(0.05)


# -- rollback ------------------------------------------------------------------------------
def rollback(store: Store, s: Session, turn: int) -> dict[str, Any]:
    """Restore the worktree to turn ``turn``'s checkpoint, after checkpointing the present."""
    from parallel_agents.git import snapshots

    if s.status in ACTIVE:
        raise Conflict(f"session {s.id} is {s.status.value}", hint=f"pa stop {s.id} first")
    if not _worktree_ok(s):
        raise Conflict(f"the worktree of session {s.id} is gone", hint=f"pa restore {s.id}")
    from parallel_agents.sessions.repos import require_usable

    repo_path = require_usable(store, s)
    wait_for_index_lock(Path(s.worktree))
    target = git.rev_parse(repo_path, turn_ref(s.id, turn))
    if target is None:
        have = store.checkpoint_turns(s.id)
        raise UsageError(
            f"session {s.id} has no checkpoint for turn {turn}",
            hint=f"checkpoints exist for turns: {', '.join(map(str, have)) or 'none'}",
        )
    from parallel_agents.git import archive

    undo_ref = f"refs/pa/sessions/{s.id}/before-rollback/{int(time.time() * 1000)}"
    # A full archive, so the undo point keeps the staging area too (a plain checkpoint
    # holds only the files as they are in the worktree).
    undo = archive.snapshot(Path(s.worktree), f"pa: state before rollback to {turn}").commit
    undo_ref = archive.write_new_ref(repo_path, undo_ref, undo, "pa checkpoint")
    snapshots.restore(Path(s.worktree), target)
    # The next turn starts from the rollback's target, not from the last turn's end.
    next_turn = len(store.turns(s.id)) + 1
    git.run(["update-ref", turn_start_ref(s.id, next_turn), target], repo_path)
    store.add_event(
        s.id,
        EventKind.ROLLBACK.value,
        {"rollback_to_turn": turn, "commit": target, "undo_ref": undo_ref, "next_turn": next_turn},
    )
    note = (
        "turn checkpoints do not record the staging area: nothing is staged now (the index "
        f"matches HEAD); the staging area from before is kept in {undo_ref}"
    )
    return {
        "session": s.id,
        "turn": turn,
        "commit": target,
        "undo_ref": undo_ref,
        "undo": undo,
        "note": note,
    }


# -- conflicts -----------------------------------------------------------------------------
def session_head(store: Store, s: Session) -> str | None:
    """The commit that stands for a session in the forecast: its latest checkpoint."""
    repo_path = Path(store.repo(s.repo_id).path)
    commit = store.latest_checkpoint_commit(s.id)
    if commit is not None and git.rev_parse(repo_path, commit):
        return commit
    return git.rev_parse(repo_path, f"refs/heads/{s.branch}")


def _session_heads(store: Store, repo_path: Path, members: list[Session]) -> dict[str, str]:
    """``session_head`` of many sessions of one repo with two git processes in all, not one
    or two a session (at 1,000 sessions those took 3 s of every forecast)."""
    from parallel_agents.git.forecast import _resolve_many

    marks = {s.id: store.latest_checkpoint_commit(s.id) for s in members}
    have = [s for s in members if marks[s.id] is not None]
    found = _resolve_many(repo_path, [str(marks[s.id]) for s in have])
    heads = {s.id: str(marks[s.id]) for s, oid in zip(have, found, strict=True) if oid}
    rest = [s for s in members if s.id not in heads]
    refs = _resolve_many(repo_path, [f"refs/heads/{s.branch}" for s in rest])
    heads.update({s.id: oid for s, oid in zip(rest, refs, strict=True) if oid})
    return heads


def conflicts(store: Store, repo_id: int | None = None) -> dict[str, Any]:
    """Forecast per repo and base branch: clean with base? which pairs conflict?"""
    from parallel_agents.git import forecast

    live = [
        s
        for s in store.sessions()
        if s.status.live and s.status != Status.MERGED and (repo_id is None or s.repo_id == repo_id)
    ]
    groups: dict[tuple[int, str], list[Session]] = {}
    for s in live:
        groups.setdefault((s.repo_id, s.base_ref), []).append(s)
    out_sessions: dict[str, Any] = {}
    pairs: list[dict[str, Any]] = []
    result: dict[str, Any] = {"sessions": out_sessions, "pairs": pairs, "skipped": []}
    for (rid, base_ref), members in groups.items():
        repo_path = Path(store.repo(rid).path)
        if not (repo_path / ".git").exists():
            # One missing repository must not take the forecast of the others down.
            _skip(store, rid, base_ref, members, f"the repository is missing ({repo_path})", result)
            continue
        base = git.rev_parse(repo_path, base_ref) or members[0].base_commit
        heads = _session_heads(store, repo_path, members)
        cache_key = f"conflict-cache:{rid}"
        raw = store.kv_get(cache_key) or {}
        cache: dict[tuple[str, str], list[str]] = {
            tuple(k.split(":", 1)): v for k, v in raw.items()
        }
        try:
            fc = forecast.forecast(repo_path, base, heads, cache)
        except PAError as e:
            _skip(store, rid, base_ref, members, e.message, result)
            continue
        if len(cache) > 5000:
            cache = dict(list(cache.items())[-5000:])
        store.kv_set(cache_key, {f"{a}:{b}": v for (a, b), v in cache.items()})
        for sid, sf in fc.sessions.items():
            out_sessions[sid] = {
                "repo": store.repo(rid).name,
                "base": base_ref,
                "head": sf.head,
                "clean_with_base": sf.clean_with_base,
                "base_conflict_paths": sf.base_conflict_paths,
                "conflicts_with": sf.conflicts_with,
            }
        pairs.extend({"a": c.a, "b": c.b, "paths": c.paths} for c in fc.conflicts)
    _announce_new_conflicts(store, pairs)
    return result


def _skip(
    store: Store,
    rid: int,
    base_ref: str,
    members: list[Session],
    reason: str,
    out: dict[str, Any],
) -> None:
    """Flag a repo group the forecast could not cover (in ``skipped`` and per session)."""
    repo = store.repo(rid)
    out["skipped"].append(
        {
            "repo": repo.name,
            "path": repo.path,
            "base": base_ref,
            "reason": reason,
            "sessions": [s.id for s in members],
            "hint": f"if you moved it: pa repo move {repo.name} NEWPATH",
        }
    )
    for s in members:
        out["sessions"][s.id] = {
            "repo": repo.name,
            "base": base_ref,
            "head": None,
            "clean_with_base": None,
            "base_conflict_paths": [],
            "conflicts_with": [],
            "skipped": reason,
        }


def _announce_new_conflicts(store: Store, pairs: list[dict[str, Any]]) -> None:
    """Emit a `conflict` event the first time a pair is seen conflicting."""
    known = set(store.kv_get("conflict-pairs") or [])
    now = {f"{p['a']}:{p['b']}" for p in pairs}
    for p in pairs:
        key = f"{p['a']}:{p['b']}"
        if key not in known:
            for sid, other in ((p["a"], p["b"]), (p["b"], p["a"])):
                store.add_event(sid, "conflict", {"with": other, "paths": p["paths"]})
    if now != known:
        store.kv_set("conflict-pairs", sorted(now))

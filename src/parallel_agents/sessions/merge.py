"""Merging sessions: checkpoint, merge queue onto the target, sync the main checkout, PRs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.config import load_repo_config
from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.git import worktrees
from parallel_agents.models import Session, Status
from parallel_agents.sessions import lineage, ports, workspace_run
from parallel_agents.sessions.review import _worktree_ok

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

ACTIVE = (Status.QUEUED, Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT)


def default_message(app: App, s: Session) -> str:
    """The session title and a summary of its turns (the person's prompts, not agent text)."""
    turns = app.store.turns(s.id)
    lines = [s.title, ""]
    for t in turns:
        first = t.prompt.strip().splitlines()[0] if t.prompt.strip() else ""
        lines.append(f"- turn {t.n}: {first[:100]}")
    lines += ["", f"pa session {s.id} ({s.agent}) on {s.branch}"]
    return "\n".join(lines).strip() + "\n"


def _mergeable(s: Session) -> None:
    if s.status == Status.MERGED:
        raise Conflict(f"session {s.id} is already merged")
    if s.status == Status.DISCARDED:
        raise Conflict(f"session {s.id} was discarded", hint=f"pa restore {s.id} first")
    if s.status in ACTIVE:
        raise Conflict(
            f"session {s.id} is still {s.status.value}",
            hint=f"wait for it (pa wait {s.id}) or stop it (pa stop {s.id})",
        )


def merge_ref(sid: str) -> str:
    """Where the commit of a session's uncommitted work, as merged, is kept."""
    return f"refs/pa/sessions/{sid}/merge"


def _source(app: App, s: Session, repo_path: Path) -> tuple[str, str | None]:
    """The commit to merge for ``s``, and a note when it holds uncommitted work."""
    from parallel_agents.git import merging as merge

    if _worktree_ok(s):
        commit, uncommitted = merge.source_commit(
            Path(s.worktree), merge_ref(s.id), default_message(app, s)
        )
        note = (
            f"{s.id}: uncommitted changes in the worktree were checkpointed as one commit "
            f"({commit[:12]}) and are included in the merge"
            if uncommitted
            else None
        )
        return commit, note
    head = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    if head is None:
        raise PAError(f"session {s.id} has neither a worktree nor a branch to merge")
    return head, None


def _refuse_active_checkouts(app: App, s0: Session, checkouts: list[Path], target: str) -> None:
    """A running agent's worktree is never updated under it."""
    real = {os.path.realpath(c): c for c in checkouts}
    for other in app.store.sessions(repo_id=s0.repo_id):
        co = real.get(os.path.realpath(other.worktree))
        if co is not None and other.status in ACTIVE:
            raise Conflict(
                f"{target} is checked out in {co}, the worktree of session {other.id}, which "
                f"is {other.status.value}; pa will not move its files under a working agent",
                hint=f"wait for it (pa wait {other.id}) or stop it, then merge again; "
                "or merge into another branch with --into",
            )


def merge_sessions(
    app: App,
    ids: list[str],
    *,
    strategy: str | None = None,
    into: str | None = None,
    message: str | None = None,
    fix_conflicts: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Merge the sessions in order onto the target branch.

    Wherever the target is checked out (the main checkout or any linked worktree), its
    index and files move together with the branch, under the repo's merge lock; when git
    cannot update them the item is ``checkout_blocked`` and the branch does not move,
    unless ``force`` (then the branch moves and a note says how to bring the files
    along). A merge interrupted after moving the branch is finished first, and a retried
    merge finds its work already merged: nothing is merged twice.
    """
    from parallel_agents.git import merge_queue as queue
    from parallel_agents.git import merging as merge
    from parallel_agents.sessions.repos import require_repo

    if not ids:
        raise UsageError("name at least one session to merge")
    sessions = [app.store.resolve_session(i) for i in ids]
    if len({s.id for s in sessions}) != len(sessions):
        raise UsageError("a session is named twice")
    for s in sessions:
        _mergeable(s)
    repos = {s.repo_id for s in sessions}
    if len(repos) != 1:
        raise UsageError("sessions of different repos cannot be merged in one queue")
    repo_path = require_repo(app.store, sessions[0])  # a clear error when it is gone
    target = into or sessions[0].base_ref
    if target == "HEAD" or git.rev_parse(repo_path, f"refs/heads/{target}") is None:
        if into is None:
            raise UsageError(
                f"the base {target!r} of session {sessions[0].id} is not a branch",
                hint="say where to merge with --into BRANCH",
            )
        raise UsageError(
            f"branch {target!r} does not exist in {repo_path}",
            hint="create it first, or pick an existing branch with --into",
        )
    for s in sessions:  # issue 18: never into a branch the session's lead works on
        lineage.refuse_parent_branch(app.store, s, target)
    strat = strategy or str(app.settings.get("merge.strategy") or "merge")
    notes: list[str] = []
    items = []
    # Sources are made outside the merge lock: they touch only the sessions' worktrees.
    for s in sessions:
        if "branch" in (s.options.get("from") or {}):
            # The user's own branch (pa new --from-branch): the work goes onto it as well.
            commit, moved = commit_session_work(app, s)
            note: str | None = None
            if moved:
                note = f"committed the session's work onto {s.branch} as {commit[:10]}"
        else:
            commit, note = _source(app, s, repo_path)
        if note:
            notes.append(note)
        notes += copied_file_warnings(repo_path, s, commit)
        msg = message or default_message(app, s)
        items.append(queue.QueueItem(s.id, commit, msg))
    rcfg = load_repo_config(repo_path)
    check = None
    if rcfg.check:
        timeout = float(app.settings.get("check.timeout") or 600)
        check = queue.commit_checker(repo_path, rcfg.check, timeout, env=rcfg.env)
    with merge.merge_lock(repo_path):
        checkouts = merge.branch_checkouts(repo_path, target)
        _refuse_active_checkouts(app, sessions[0], checkouts, target)
        for co in checkouts:
            pending = merge.interrupted_sync(co)
            if pending is not None:
                merge.finish_interrupted_sync(co, pending[1], pending[2])
                notes.append(
                    f"finished updating the files in {co} for an earlier merge into "
                    f"{pending[0]} that was interrupted"
                )
        state = merge.checkout_state(repo_path, target)
        report = queue.merge_queue(
            repo_path,
            items,
            target,
            strat,  # type: ignore[arg-type]
            check,
            checkouts=() if force else checkouts,
        )
        behind: list[str] = []
        if report.old != report.new:
            for co in checkouts:
                if force:
                    synced, note = merge.sync_after_force(co, target, report.old, report.new)
                    notes.append(note)
                    if not synced:
                        behind.append(str(co))
                else:
                    notes.append(f"updated the files in {co} to {target} at {report.new[:12]}")
        by_id = {s.id: s for s in sessions}
        for res in report.items:
            s = by_id[res.session_id]
            if res.status in ("merged", "up_to_date"):
                app.store.set_status(s.id, Status.MERGED, unread=False)
                app.store.add_event(s.id, "status", {"merged_into": target, "commit": res.commit})
    for res in report.items:
        s = by_id[res.session_id]
        if res.status in ("merged", "up_to_date"):
            if app.settings.get("merge.remove_worktree"):
                from parallel_agents.git.session_archive import archive_session

                archive_session(repo_path, s)
                from parallel_agents.sessions.from_work import owns_branch

                keep = not owns_branch(s)  # the user's own branch (pa new --from-branch)
                workspace_run.before_remove(app.store, s, repo_path)  # issue 16 §1
                worktrees.remove(repo_path, Path(s.worktree), s.branch, delete_branch=not keep)
                ports.release(app.store, s.id)
                app.sup.release(s)  # issue 19: merged and archived: its Ray slot goes
        elif res.status == "conflict" and fix_conflicts:
            prompt = (
                f"The branch {target} has moved and your work no longer merges cleanly. "
                f"Bring {target} into your branch (for example `git merge {target}`), resolve "
                f"the conflicts in: {', '.join(res.conflict_paths)}, keep both intents, and "
                "make sure the code still works."
            )
            app.send(s.id, prompt)
            notes.append(f"{s.id}: sent the agent a follow-up to resolve the conflicts")
    out = report.to_json()
    out["notes"] = notes
    out["checkout"] = state
    out["checkouts"] = [str(c) for c in checkouts]
    # Checkouts --force left trailing the branch: the user has something to do there.
    out["checkouts_behind"] = behind
    return out


def copied_file_warnings(repo_path: Path, s: Session, commit: str) -> list[str]:
    """A warning for each file `copy = [...]` put into the worktree that the session changed
    (so it is part of ``commit``): unchanged copies never are, changed ones are the
    agent's work but may hold secrets."""
    wt = Path(s.worktree)
    copied = worktrees.copied_files(wt) if wt.is_dir() else {}
    if not copied:
        return []
    out = git.out(["diff", "--name-only", "-z", "--no-renames", s.base_commit, commit], repo_path)
    changed = sorted(set(out.split("\0")) & set(copied))
    return [
        f"WARNING: {p} was copied in by copy = [...] in .parallel-agents.toml and this "
        "session changed it, so it is included; check it holds no secrets"
        for p in changed
    ]


def commit_session_work(app: App, s: Session) -> tuple[str, bool]:
    """Put the session's uncommitted work on its branch as the very commit merge makes of
    it (``_source``: one commit, the title and prompts as message, copied files left
    out). Returns (branch head, whether the branch moved to such a commit).

    The worktree's files stay as they are; its index is set to the new HEAD.
    """
    repo_path = Path(app.store.repo(s.repo_id).path)
    wt = Path(s.worktree)
    head = git.rev_parse(wt, "HEAD") if _worktree_ok(s) else None
    commit, note = _source(app, s, repo_path)
    if note is None or head is None or commit == head:
        return commit, False
    # The old value makes this refuse (not lose) a commit the agent made meanwhile.
    git.run(["update-ref", "-m", "pa pr: commit the session's work", "HEAD", commit, head], wt)
    git.run(["read-tree", "HEAD"], wt)
    git.run(["update-index", "-q", "--refresh"], wt, check=False)
    return commit, True


def gh_ready() -> str:
    """The `gh` executable, once it is installed and logged in; else a clear error."""
    import shutil
    import subprocess

    exe = shutil.which("gh")
    if exe is None:
        raise PAError(
            "the GitHub CLI (gh) is not installed, so pa cannot open a pull request; "
            "nothing was committed or pushed",
            hint="install gh (https://cli.github.com; Debian: apt install gh), run "
            "`gh auth login`, then pa pr again",
        )
    try:
        r = subprocess.run(
            [exe, "auth", "status"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**git.git_env(), "GH_PROMPT_DISABLED": "1"},
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PAError(
            f"could not ask gh whether it is logged in ({e}); nothing was committed or pushed",
            hint="run `gh auth status` yourself",
        ) from e
    if r.returncode != 0:
        why = [ln.strip() for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        raise PAError(
            "gh is not logged in to GitHub, so pa cannot open a pull request; nothing was "
            f"committed or pushed ({why[0] if why else f'gh auth status: exit {r.returncode}'})",
            hint="run `gh auth login`, then pa pr again",
        )
    return exe


def pr(app: App, sid: str, *, draft: bool = False, remote: str = "origin") -> dict[str, Any]:
    """Commit the session's work onto its branch (as merge would take it), push the
    branch and open a pull request with gh. Refuses before committing or pushing anything
    when the session is working, gh is missing or not logged in, or there is no remote."""
    from parallel_agents.git import github
    from parallel_agents.sessions import from_work

    s = app.store.resolve_session(sid)
    if s.status == Status.DISCARDED:
        raise Conflict(f"session {s.id} was discarded", hint=f"pa restore {s.id} first")
    if s.status in ACTIVE:
        raise Conflict(
            f"session {s.id} is still {s.status.value}",
            hint=f"wait for it (pa wait {s.id}) or stop it (pa stop {s.id})",
        )
    repo_path = Path(app.store.repo(s.repo_id).path)
    if git.run(["remote", "get-url", remote], repo_path, check=False).returncode != 0:
        remotes = git.out(["remote"], repo_path).split()
        have = f"it has: {', '.join(remotes)}" if remotes else "it has no remotes at all"
        raise UsageError(
            f"the repository {repo_path} has no remote named {remote!r} to push to ({have}); "
            "nothing was committed or pushed",
            hint=f"add one with: git remote add {remote} <url>",
        )
    gh = gh_ready()
    notes: list[str] = []
    wt = Path(s.worktree)
    if wt.is_dir():
        from parallel_agents.sessions.review import wait_for_index_lock

        wait_for_index_lock(wt)
    head, committed = commit_session_work(app, s)
    if committed:
        notes.append(f"committed the worktree's uncommitted changes onto {s.branch} as {head[:10]}")
    notes += copied_file_warnings(repo_path, s, head)
    turns = app.store.turns(s.id)
    body = "\n".join(
        f"- {t.prompt.strip().splitlines()[0][:100]}" for t in turns if t.prompt.strip()
    )
    pushed = from_work.push_to_pr(repo_path, s)  # a session started from a PR: push to it
    if pushed is not None:
        pushed["notes"] = notes
        app.store.add_event(s.id, "status", {"pr": pushed["url"], "pushed": True})
        return pushed
    base = s.base_ref if git.rev_parse(repo_path, f"refs/heads/{s.base_ref}") else None
    res = github.push_and_pr(
        repo_path,
        s.branch,
        remote=remote,
        draft=draft,
        title=s.title,
        body=body
        + f"\n\nOpened by pa (session {s.id}, {s.agent})."
        + from_work.pr_body_suffix(s),
        base=base,
        gh=gh,
    )
    out = res.to_json()
    out["notes"] = notes
    app.store.add_event(s.id, "status", {"pr": res.url, "pushed": res.pushed})
    if not res.created:
        # Pushed, but gh failed: an error the caller sees (the push itself is kept).
        raise PAError(res.message, hint="fix what gh says, then run pa pr again")
    return out

"""Turn checkpoints: the store's record and git's ``refs/pa/sessions/...`` refs agree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.models import Status
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


ENDED_TURN = ("done", "failed", "stopped", "interrupted")


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

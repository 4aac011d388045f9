"""Start a session from existing work (issue 16 §4): an existing branch, a pull request
or an issue (the last two read through the GitHub CLI ``gh``).

What the session started from is stored in its options as ``{"from": {...}}``:
``{"branch": B}`` (the user's branch: pa never deletes it), ``{"pr": N, "head": H,
"remote": R, "url": U}`` (``pa pr`` pushes to the PR's own branch H instead of opening a
new PR) or ``{"issue": N, "url": U}`` (``pa pr`` writes "Fixes #N").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from parallel_agents import git
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.git.gh import gh_json
from parallel_agents.models import Repo, Session


class App(Protocol):
    """What this module needs of ``orchestrator.App`` (a Protocol: the orchestrator
    imports this module, so importing it back would make a cycle)."""

    def find_repo(self, ref: str | None, cwd: Path | None = None) -> Repo: ...

    @property
    def new_session(self) -> Callable[..., Session]: ...

PR_FIELDS = (
    "number,title,body,state,url,headRefName,headRepositoryOwner,isCrossRepository,"
    "headRepository"
)
ISSUE_FIELDS = "number,title,body,url"


def source(s: Session) -> dict[str, Any]:
    """What the session started from (``{}``: a fresh branch of its own)."""
    src = s.options.get("from")
    return dict(src) if isinstance(src, dict) else {}


def owns_branch(s: Session) -> bool:
    """May pa delete the session's branch (after archiving)? Not a branch the user had
    before the session: ``pa new --from-branch`` works on the user's own branch."""
    return "branch" not in source(s)


def check_branch(repo: Path, branch: str, base_commit: str) -> str:
    """Refuse a branch that does not exist or is checked out in another worktree (before
    anything is made); the commit the session's diff starts from: where ``branch`` forked
    from the base."""
    from parallel_agents.git import worktrees

    tip = git.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None:
        raise NotFound(
            f"there is no branch {branch!r} in {repo}; nothing was made",
            hint="list the branches with: git branch --list (or fetch it first)",
        )
    for where, b in worktrees.registered_worktrees(repo).items():
        if b == branch:
            raise Conflict(
                f"branch {branch} is checked out in {where}; nothing was made",
                hint="switch that checkout to another branch (or finish that session), "
                "then start again",
            )
    r = git.run(["merge-base", base_commit, tip], repo, check=False)
    fork = r.text.strip() if r.returncode == 0 else ""
    return fork or base_commit


def _gh(repo: Path, args: list[str]) -> dict[str, Any]:
    """Run ``gh ARGS`` in ``repo`` and parse its JSON answer; a clear error (nothing made)
    when gh is missing, not logged in or refuses."""
    data = gh_json(
        args, cwd=repo, why="read pull requests or issues", after="; nothing was made",
        fail=NotFound, fail_hint="check the number (gh pr list / gh issue list)",
    )
    if not isinstance(data, dict):
        raise PAError(f"gh answered unexpected JSON: {json.dumps(data)[:200]}")
    return data


def _with(prompt: str, lead: str) -> str:
    return f"{lead}\n\n{prompt.strip()}" if prompt.strip() else lead


def new_from(
    app: App,
    prompt: str,
    *,
    from_branch: str | None = None,
    from_pr: int | None = None,
    from_issue: int | None = None,
    **kw: Any,
) -> Session:
    """One session started from a branch, a PR or an issue (exactly one of them)."""
    given = [n for n, v in (("--from-branch", from_branch), ("--from-pr", from_pr),
                            ("--from-issue", from_issue)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise UsageError(
            f"{' and '.join(given) or 'no --from-…'}: give exactly one source",
            hint="one of --from-branch BRANCH, --from-pr N, --from-issue N",
        )
    if from_branch is not None:
        return app.new_session(
            prompt, on_branch=from_branch, options={"from": {"branch": from_branch}}, **kw
        )
    repo_path = Path(app.find_repo(kw.get("repo"), kw.get("cwd")).path)
    if from_issue is not None:
        d = _gh(repo_path, ["issue", "view", str(from_issue), "--json", ISSUE_FIELDS])
        n, title, body = int(d.get("number") or from_issue), str(d.get("title") or ""), str(
            d.get("body") or ""
        )
        lead = f"Fix issue #{n}: {title}\n\n{body}".rstrip()
        kw["title"] = kw.get("title") or f"issue {n} {title}"
        return app.new_session(
            _with(prompt, lead), options={"from": {"issue": n, "url": d.get("url")}}, **kw
        )
    assert from_pr is not None
    d = _gh(repo_path, ["pr", "view", str(from_pr), "--json", PR_FIELDS])
    n, title, head = int(d.get("number") or from_pr), str(d.get("title") or ""), str(
        d.get("headRefName") or ""
    )
    if str(d.get("state") or "OPEN").upper() != "OPEN":
        raise Conflict(
            f"pull request #{n} is {str(d.get('state')).lower()}; nothing was made",
            hint=f"reopen it first, or start from its branch: pa new --from-branch {head}",
        )
    if d.get("isCrossRepository"):
        owner = (d.get("headRepositoryOwner") or {}).get("login", "?")
        raise UsageError(
            f"pull request #{n} comes from a fork ({owner}:{head}): pa could not push the "
            "session's work back to it; nothing was made",
            hint=f"fetch it yourself (gh pr checkout {n}), then pa new --from-branch BRANCH",
        )
    if not head:
        raise PAError(f"gh named no head branch for pull request #{n}")
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", head).strip("-").lower()[:24].rstrip("-") or "head"
    local = f"pa/pr-{n}-{slug}"
    remote = "origin"
    from parallel_agents.git import worktrees

    for where, b in worktrees.registered_worktrees(repo_path).items():
        if b == local:
            raise Conflict(
                f"pull request #{n} is already checked out in {where} (branch {local}); "
                "nothing was made",
                hint="continue that session with pa send, or discard it first",
            )
    f = git.run(
        ["fetch", "--quiet", remote, f"refs/pull/{n}/head:refs/heads/{local}"],
        repo_path,
        check=False,
        timeout=600,
    )
    if f.returncode != 0:
        why = (f.stderr.strip() or f.text.strip()).splitlines()
        raise PAError(
            f"git fetch of pull request #{n} from {remote} failed: "
            f"{why[-1] if why else 'unknown error'}; nothing was made",
            hint=f"check `git fetch {remote} refs/pull/{n}/head` works here",
        )
    lead = f"Continue the work of PR #{n}: {title}\n\n{d.get('body') or ''}".rstrip()
    kw["title"] = kw.get("title") or f"pr {n} {title}"
    info = {"pr": n, "head": head, "remote": remote, "url": d.get("url")}
    return app.new_session(_with(prompt, lead), on_branch=local, options={"from": info}, **kw)


def push_to_pr(repo_path: Path, s: Session) -> dict[str, Any] | None:
    """For a session started from a PR: push its branch to the PR's own head branch (the
    PR exists: no new one is opened). None for any other session."""
    src = source(s)
    if "pr" not in src:
        return None
    remote, head = str(src.get("remote") or "origin"), str(src["head"])
    commit = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    p = git.run(
        ["push", "--porcelain", remote, f"refs/heads/{s.branch}:refs/heads/{head}"],
        repo_path,
        check=False,
        timeout=300,
    )
    if p.returncode != 0:
        why = (p.stderr.strip() or p.text.strip()).splitlines()
        raise PAError(
            f"git push of {s.branch} to {remote} {head} (pull request #{src['pr']}) failed: "
            f"{why[-1] if why else 'unknown error'}",
            hint="someone may have pushed to the PR meanwhile: pa send the session a "
            f"follow-up to merge {remote}/{head}, then pa pr again",
        )
    return {
        "branch": head,
        "remote": remote,
        "commit": commit,
        "pushed": True,
        "created": False,
        "url": src.get("url"),
        "gh_argv": [],
        "message": f"pushed {s.branch} to {remote} {head}, the branch of pull request "
        f"#{src['pr']}",
    }


def pr_body_suffix(s: Session) -> str:
    """What ``pa pr`` adds to the body: "Fixes #N" for a session started from an issue."""
    n = source(s).get("issue")
    return f"\n\nFixes #{n}" if n else ""

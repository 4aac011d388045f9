"""Pull requests: push a branch and open a pull request with the GitHub CLI (``gh``)."""

from __future__ import annotations

import enum
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import NotFound, PAError, UsageError
from parallel_agents.git.merging import branch_ref, short_branch

__all__ = ["AUTO", "PRResult", "gh_pr_argv", "push_and_pr"]


class _Auto(enum.Enum):
    AUTO = "auto"


AUTO = _Auto.AUTO


@dataclass(frozen=True)
class PRResult:
    branch: str
    remote: str
    commit: str  # what was pushed
    pushed: bool
    created: bool  # a PR was opened by gh
    url: str | None
    gh_argv: list[str]
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def gh_pr_argv(
    branch: str,
    *,
    title: str,
    body: str,
    draft: bool = False,
    base: str | None = None,
    gh: str = "gh",
) -> list[str]:
    """The exact ``gh pr create`` argv pa runs (argv elements, never a shell string)."""
    argv = [gh, "pr", "create", "--head", branch, "--title", title, "--body", body]
    if base:
        argv += ["--base", base]
    if draft:
        argv.append("--draft")
    return argv


def push_and_pr(
    repo: Path,
    branch: str,
    *,
    remote: str = "origin",
    draft: bool = False,
    title: str,
    body: str,
    base: str | None = None,
    gh: str | _Auto | None = AUTO,
    timeout: float = 300,
) -> PRResult:
    """Push ``branch`` to ``remote`` and open a pull request with the ``gh`` CLI.

    No such remote: UsageError naming it. A failed push: PAError with git's reason.
    No ``gh`` (``gh=None``, or not on PATH by default): the branch is pushed and the
    result says gh is missing and gives the command to run.
    """
    repo = Path(repo)
    name = short_branch(branch)
    ref = branch_ref(branch)
    r = git.run(["remote", "get-url", remote], repo, check=False)
    if r.returncode != 0:
        remotes = git.run(["remote"], repo).text.strip().split()
        have = f"it has: {', '.join(remotes)}" if remotes else "it has no remotes at all"
        raise UsageError(
            f"the repository {repo} has no remote named {remote!r} to push to ({have})",
            hint=f"add one with: git remote add {remote} <url>",
        )
    commit = git.resolve(repo, ref)
    if commit is None:
        raise NotFound(f"branch {name!r} does not exist in {repo}")
    p = git.run(
        ["push", "--porcelain", remote, f"{ref}:refs/heads/{name}"],
        repo,
        check=False,
        timeout=timeout,
    )
    if p.returncode != 0:
        why = (p.stderr.strip() or p.text.strip()).splitlines()
        raise PAError(
            f"git push of {name} to {remote} failed: {why[-1] if why else 'unknown error'}",
            hint="check the remote's URL and your credentials, then run pa pr again",
        )
    exe = shutil.which("gh") if gh is AUTO else gh
    argv = gh_pr_argv(name, title=title, body=body, draft=draft, base=base, gh=exe or "gh")
    if not exe:
        return PRResult(
            name,
            remote,
            commit,
            True,
            False,
            None,
            argv,
            f"pushed {name} to {remote}; the GitHub CLI (gh) is not installed, so no pull "
            f"request was opened. Install gh and run: {shlex.join(argv)}",
        )
    try:
        g = subprocess.run(
            argv,
            cwd=str(repo),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**git.git_env(), "GH_PROMPT_DISABLED": "1"},
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return PRResult(
            name,
            remote,
            commit,
            True,
            False,
            None,
            argv,
            f"pushed {name} to {remote}, but gh could not run ({e}); run: {shlex.join(argv)}",
        )
    if g.returncode != 0:
        err = (g.stderr.strip() or g.stdout.strip()).splitlines()
        return PRResult(
            name,
            remote,
            commit,
            True,
            False,
            None,
            argv,
            f"pushed {name} to {remote}, but gh pr create failed: "
            f"{err[-1] if err else f'exit code {g.returncode}'}",
        )
    url = next(
        (ln.strip() for ln in reversed(g.stdout.splitlines()) if ln.strip().startswith("http")),
        None,
    )
    return PRResult(
        name,
        remote,
        commit,
        True,
        True,
        url,
        argv,
        f"pushed {name} to {remote} and opened {url or 'a pull request'}",
    )

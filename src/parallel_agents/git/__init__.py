"""Thin wrapper over the git CLI: argv lists only, never a shell string."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from parallel_agents.errors import PAError

# Keep git from prompting, paging or reading the user's global hooks config in ways
# that would make an orchestrator hang or behave differently per machine.
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
}

# Identity used for commits pa makes itself (checkpoints, archives) when the user has none.
PA_IDENTITY = {
    "GIT_AUTHOR_NAME": "parallel-agents",
    "GIT_AUTHOR_EMAIL": "pa@localhost",
    "GIT_COMMITTER_NAME": "parallel-agents",
    "GIT_COMMITTER_EMAIL": "pa@localhost",
}


class GitError(PAError):
    """A git command failed; carries the command and its stderr."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str, stdout: str = "") -> None:
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        # git's own "fatal:"/"error:" line names the problem (e.g. which lock file); the
        # last line is often only advice.
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        key = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), None)
        msg = key or (lines[-1] if lines else f"exit code {returncode}")
        super().__init__(f"git {' '.join(args[:3])}… failed: {msg}")


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_BASE_ENV)
    if extra:
        env.update(extra)
    return env


def run(
    args: Sequence[str],
    cwd: Path | str,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = 300,
) -> GitResult:
    """Run ``git <args>`` in ``cwd``; raise GitError on failure when ``check``."""
    binary_in = isinstance(input, bytes)
    proc = subprocess.run(
        ["git", *args],
        cwd=str(cwd),
        env=git_env(env),
        input=input,
        capture_output=True,
        text=not binary_in,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8", "replace")
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, err, out)
    return GitResult(proc.returncode, out, err)


def out(args: Sequence[str], cwd: Path | str, **kw: object) -> str:
    """stdout of a git command, stripped of the trailing newline."""
    return run(args, cwd, **kw).stdout.strip()  # type: ignore[arg-type]


def rev_parse(cwd: Path | str, rev: str) -> str | None:
    """Full commit id of ``rev`` or None when it does not name a commit."""
    r = run(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


@dataclass(frozen=True)
class StartInfo:
    toplevel: Path
    head: str  # commit checked out
    branch: str | None  # its branch's short name; None when detached
    base: str | None  # commit of the base asked for, if one was


def start_info(cwd: Path | str, base: str | None = None) -> StartInfo | None:
    """What starting a session needs to know of a repo, in one process; None when
    anything is unusual (no commits, unknown base, not a work tree…): the caller then
    asks again step by step, to say exactly what is wrong."""
    if base is not None and (base.startswith("-") or not base.strip()):
        return None
    revs = ["HEAD^{commit}", *([f"{base}^{{commit}}"] if base is not None else [])]
    args = ["rev-parse", "--is-inside-work-tree", "--show-toplevel", *revs]
    try:
        r = run([*args, "--symbolic-full-name", "HEAD"], cwd, check=False)
    except OSError:  # the folder is gone, or is not one
        return None
    lines = r.stdout.splitlines()
    if r.returncode != 0 or len(lines) != 3 + len(revs) or lines[0] != "true":
        return None
    sym = lines[-1]
    return StartInfo(
        toplevel=Path(lines[1]),
        head=lines[2],
        branch=sym.removeprefix("refs/heads/") if sym.startswith("refs/heads/") else None,
        base=lines[3] if base is not None else None,
    )


def ref_exists(cwd: Path | str, ref: str) -> bool:
    return run(["show-ref", "--verify", "--quiet", ref], cwd, check=False).returncode == 0


def current_branch(cwd: Path | str) -> str | None:
    r = run(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def toplevel(cwd: Path | str) -> Path | None:
    r = run(["rev-parse", "--show-toplevel"], cwd, check=False)
    return Path(r.stdout.strip()) if r.returncode == 0 else None


def common_dir(cwd: Path | str) -> Path:
    """The repository's shared .git directory (same for every worktree)."""
    d = out(["rev-parse", "--git-common-dir"], cwd)
    p = Path(d)
    return p if p.is_absolute() else (Path(cwd) / p).resolve()


def is_bare(cwd: Path | str) -> bool:
    return out(["rev-parse", "--is-bare-repository"], cwd) == "true"


def status_porcelain(cwd: Path | str) -> str:
    return run(["status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd).stdout


def version() -> tuple[int, ...]:
    r = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
    parts = r.stdout.split()[2].split(".")
    return tuple(int(p) for p in parts[:3] if p.isdigit())

"""What runs on a Ray worker node for one session (issue 19): a detached, named actor
holding the session's worktree there and running its turns under the same wrapper as
locally (``runtime/local.py:spawn``).

Code travels as git: the orchestrator sends the session's branch as a bundle (through
Ray's object store), the node fetches it into one cached clone per repository and makes
the session's worktree off it; at the end of a turn it snapshots the worktree into a
commit and returns a bundle of it. Secrets (the agent's environment) arrive as call
arguments and live only in memory and in the turn's private launch spec.

No ``import ray`` here: the module is plain Python, wrapped by ``ray.remote`` in
``ray_runtime.py``; git runs as a process (this layer knows no ``parallel_agents.git``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from parallel_agents.runtime import local, ray_bundles
from parallel_agents.runtime.base import TurnFiles

OUT_REF = "refs/pa/ray-out/"  # + the session id: refs are shared by a clone's worktrees
# Seconds between looks at the output while a long poll is held open: the first, the most.
WAKE = (0.01, 0.1)
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "pa",
    "GIT_AUTHOR_EMAIL": "pa@localhost",
    "GIT_COMMITTER_NAME": "pa",
    "GIT_COMMITTER_EMAIL": "pa@localhost",
    "GIT_TERMINAL_PROMPT": "0",
}


def _git(args: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **_GIT_ENV, **(env or {})}
    p = subprocess.run(
        ["git", *args], cwd=str(cwd), env=full, capture_output=True, text=True, check=False
    )
    if p.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:2])}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout.strip()


class SessionNode:
    """One session's home on a node: its worktree, its turns' folders, its wrapper."""

    def __init__(self, sid: str, namespace: str) -> None:
        self.sid = sid
        # One root per pa home (namespace) on a node: caches are shared by its sessions.
        base = os.environ.get("PA_RAY_NODE_DIR") or tempfile.gettempdir()
        self.root = Path(base) / f"pa-ray-{namespace}"
        self.worktree = self.root / "worktrees" / sid
        self.have: dict[str, str] | None = None  # what the worktree is at (``holds``)
        self.base: str | None = None  # the last shipped head: home has it, bundles omit it

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def _files(self, n: int) -> TurnFiles:
        return TurnFiles(self.root / "turns" / self.sid / str(n))

    def holds(self) -> dict[str, str] | None:
        """What this actor's worktree is at (its HEAD commit and the tree of its files);
        None until its first turn: the orchestrator then ships everything (issue 19)."""
        return self.have

    def _checkout(self, repo_key: str, ship: dict[str, Any]) -> None:
        """Make the session's worktree here the shipped state (``ray_bundles.apply``), in
        the node's one cached clone of the repository."""
        cache = self.root / "repos" / repo_key
        ray_bundles.apply(cache, self.worktree, self.sid, ship, self.root)
        self.have = {"head": str(ship["head"]), "tree": str(ship["tree"])}
        self.base = str(ship["head"])

    def start_turn(
        self,
        n: int,
        repo_key: str,
        ship: dict[str, Any],
        argv: list[str],
        env: dict[str, str],
        stdin: bytes | None,
        setup: list[str] | None,
        max_bytes: int,
        local_worktree: str,
    ) -> str:
        """Check the session's code out here and start turn ``n``; returns the node id."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._checkout(repo_key, ship)
        here = str(self.worktree)
        # Paths of the orchestrator's worktree mean this node's worktree here.
        argv = program_here([a.replace(local_worktree, here) for a in argv])
        env = {k: v.replace(local_worktree, here) for k, v in env.items()}
        local.spawn(
            self._files(n).dir,
            argv,
            cwd=self.worktree,
            env=env,
            stdin=stdin,
            setup=setup,
            max_bytes=max_bytes,
        )
        return self.node_id()

    def long_polls(self) -> bool:
        """Never called: its presence on a handle says this actor was made with a
        concurrency group for polls (an actor an older pa made has neither)."""
        return True

    def poll(self, n: int, offset: int, size: int, wait: float = 0.0) -> dict[str, object]:
        """Output of turn ``n`` from ``offset`` (at most ``size`` bytes), its length so
        far, and its exit record once it ended (read first: then the output is whole).

        ``wait``: seconds to hold the poll open until there is output past ``offset`` or
        the turn ended (a long poll: an idle session costs the orchestrator one call a
        ``wait``, not one a pass, and new output leaves at once)."""
        files = self._files(n)
        deadline = time.monotonic() + wait
        nap = WAKE[0]
        while time.monotonic() < deadline and not _moved(files, offset):
            time.sleep(nap)
            nap = min(nap * 2, WAKE[1])  # a burst of output goes at once, quiet costs little
        exit_info = files.exit_info()
        try:
            total = files.stdout.stat().st_size
            with open(files.stdout, "rb") as f:
                f.seek(offset)
                data = f.read(size)
        except FileNotFoundError:
            total, data = 0, b""
        return {
            "data": data,
            "total": total,
            "exit": exit_info,
            "alive": local.LocalRuntime().alive(files),
            "cut": files.cut_info(),
            "stderr": _read(files.stderr),
            "setup_log": _read(files.setup_log),
        }

    def checkpoint(self) -> bytes:
        """Snapshot the worktree (untracked files too, ignored not) into a commit on top
        of its HEAD, under ``OUT_REF`` + its id, and return a bundle of it (without what
        the orchestrator shipped: its repository has that)."""
        wt = self.worktree
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            idx = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(["read-tree", "HEAD"], wt, env=idx)
            _git(["add", "-A"], wt, env=idx)
            tree = _git(["write-tree"], wt, env=idx)
        head = _git(["rev-parse", "HEAD"], wt)
        commit = _git(["commit-tree", tree, "-p", head, "-m", "pa checkpoint (ray)"], wt)
        out_ref = OUT_REF + self.sid
        _git(["update-ref", out_ref, commit], wt)
        # Home gets exactly this: the next turn on this actor ships nothing if it is kept.
        self.have = {"head": head, "tree": tree}
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            out = Path(tmp) / "out.bundle"
            thin = [f"^{self.base}"] if self.base else []  # only the turn's new commits
            _git(["bundle", "create", "-q", str(out), out_ref, *thin], wt)
            return out.read_bytes()

    def stop(self, n: int, grace: float) -> None:
        local.stop(self._files(n), grace)

    def close(self) -> None:
        """The session is over (its work is home): remove its worktree, refs and turns'
        folders here, best effort, before the orchestrator kills this actor."""
        import shutil

        wt = self.worktree
        try:
            common = Path(_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], wt))
            branch = _git(["symbolic-ref", "-q", "HEAD"], wt)
            _git(["worktree", "remove", "--force", str(wt)], common)
            for ref in (branch, f"refs/pa/in/{self.sid}", OUT_REF + self.sid):
                _git(["update-ref", "-d", ref], common)
        except (OSError, RuntimeError):
            pass  # no worktree here (never started) or git refused: the folders go below
        shutil.rmtree(wt, ignore_errors=True)
        shutil.rmtree(self.root / "turns" / self.sid, ignore_errors=True)


def program_here(argv: list[str]) -> list[str]:
    """``argv`` with its program found on this node: the orchestrator resolves an agent's
    CLI to its own absolute path, which another machine may keep elsewhere (the node's CLI
    probe found it on this PATH by its name)."""
    if not argv or not os.path.isabs(argv[0]) or os.access(argv[0], os.X_OK):
        return argv
    found = shutil.which(os.path.basename(argv[0]))
    return [found, *argv[1:]] if found else argv


def _moved(files: TurnFiles, offset: int) -> bool:
    """Whether turn output past ``offset`` or its exit record is there."""
    if files.exit.exists():
        return True
    try:
        return files.stdout.stat().st_size > offset
    except FileNotFoundError:
        return False


def _read(p: Path, limit: int = 64 * 1024) -> bytes:
    try:
        with open(p, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read()
    except OSError:
        return b""

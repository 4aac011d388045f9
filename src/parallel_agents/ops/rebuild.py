"""`pa doctor --rebuild`: sessions back into an emptied or lost ``pa.db``.

What survives the database: each session's folder (``$PA_HOME/sessions/<id>/turns/<n>/``
with the launch spec, the agent's output and exit code), its worktree
(``<worktree_root>/<repo>/<id>``, whose git dir names the repository) and its refs (the
branch ``pa/<slug>-<id>``, checkpoints ``refs/pa/sessions/<id>/turns/<n>``). From these a
session row is re-created as ``idle``, with one ended turn per folder and a checkpoint
row per ref. Not recoverable: the event history (``pa logs`` starts empty; the raw output
stays in the turn folders) and, for some agents, the prompts (then a placeholder names
the folder). Only sessions whose worktree still exists are rebuilt; nothing in git or on
disk is changed besides the rows (and registering the repository when it is missing).
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.git import pool, worktrees
from parallel_agents.models import Session, Status
from parallel_agents.store import RebuiltTurn

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

_SID = re.compile(r"[0-9a-f]{8}")


@dataclass
class Rebuilt:
    session: str
    repo: str | None = None
    turns: int = 0
    checkpoints: int = 0
    error: str | None = None  # why it was not rebuilt


def lost_sessions(app: App) -> list[str]:
    """Session folders without a row in pa.db."""
    d = app.store.home / "sessions"
    try:
        names = sorted(e.name for e in os.scandir(d) if e.is_dir() and _SID.fullmatch(e.name))
    except OSError:
        return []
    known = app.store.session_ids()
    return [n for n in names if n not in known]


def rebuild(app: App) -> list[Rebuilt]:
    out = []
    for sid in lost_sessions(app):
        r = Rebuilt(sid)
        try:
            _rebuild_one(app, sid, r)
        except (PAError, OSError, ValueError) as e:
            r.error = str(e)
        out.append(r)
    return out


def _find_worktree(app: App, sid: str) -> Path | None:
    root = app.settings.worktree_root
    try:
        for d in os.scandir(root):
            cand = Path(d.path) / sid
            if d.is_dir() and not d.name.startswith(".") and cand.is_dir():
                return cand
    except OSError:
        return None
    return None


def _rebuild_one(app: App, sid: str, r: Rebuilt) -> None:
    wt = _find_worktree(app, sid)
    if wt is None:
        raise PAError("its worktree is gone: nothing to work on (its output stays)")
    adm = pool.admin_dir(wt)
    if adm is None or not adm.is_dir():
        raise PAError(f"{wt} is not a git worktree")
    if worktrees.foreign_owner(adm, app.store.home) is not None:
        raise PAError(f"{wt} belongs to another PA_HOME")
    common = adm.parent.parent
    if common.name != ".git":
        raise PAError(f"the repository of {wt} is bare or unusual ({common})")
    repo_path = common.parent
    head = (adm / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref: refs/heads/"):
        raise PAError(f"{wt} is not on a branch (HEAD {head[:12]})")
    branch = head.removeprefix("ref: refs/heads/")
    repo = app.store.repo_by_path(str(repo_path))
    if repo is None:
        name = wt.parent.name
        if app.store.repo_by_name(name) is not None:
            name = f"{name}-{sid}"
        repo = app.add_repo(repo_path, name=name)
    r.repo = repo.name
    base_ref = repo.base or git.current_branch(repo_path) or "HEAD"
    base_commit = (
        git.run(["merge-base", branch, base_ref], repo_path, check=False).stdout.strip()
        or git.rev_parse(repo_path, branch)
        or ""
    )
    turns = _turns(app.store.home / "sessions" / sid / "turns")
    agent, cmd = _agent(turns[-1][1] if turns else {})
    slug = branch.removeprefix("pa/").removesuffix(f"-{sid}")
    folder_time = os.stat(app.store.home / "sessions" / sid).st_mtime
    created = min((t[2] for t in turns), default=folder_time)
    s = Session(
        id=sid,
        title=slug.replace("-", " ").strip() or f"session {sid}",
        repo_id=repo.id,
        repo_name=repo.name,
        branch=branch,
        base_ref=base_ref,
        base_commit=base_commit,
        worktree=str(wt),
        agent=agent,
        model=None,
        status=Status.IDLE,
        agent_session_id=None,
        created_at=created,
        updated_at=max((t[3] or t[2] for t in turns), default=created),
        cmd=cmd,
        options={"rebuilt": True},
    )
    refs = _checkpoint_refs(repo_path, sid)
    app.store.insert_session(s)
    try:
        rows = [
            RebuiltTurn(
                n=n,
                prompt=_prompt(spec, wt, n),
                status="interrupted" if code is None else ("done" if code == 0 else "failed"),
                started_at=started,
                ended_at=ended,
                exit_code=code,
                read_offset=size,
            )
            for n, spec, started, ended, code, size in turns
        ]
        checkpoints = [
            (n, f"refs/pa/sessions/{sid}/turns/{n}", commit) for n, commit in refs.items()
        ]
        app.store.insert_rebuilt_history(sid, rows, checkpoints, s.updated_at)
    except BaseException:
        app.store.delete_session_row(sid)  # no half-rebuilt session: it can be tried again
        raise
    r.turns, r.checkpoints = len(turns), len(refs)


_Turn = tuple[int, dict[str, Any], float, float | None, int | None, int]


def _turns(d: Path) -> list[_Turn]:
    """(n, launch spec, started, ended, exit code, output size) per turn folder."""
    out: list[_Turn] = []
    try:
        entries = [e for e in os.scandir(d) if e.is_dir() and e.name.isdigit()]
    except OSError:
        return out
    for e in sorted(entries, key=lambda e: int(e.name)):
        td = Path(e.path)
        spec: dict[str, Any] = {}
        try:
            loaded = marshal.loads((td / "launch.bin").read_bytes())
            if isinstance(loaded, dict):
                spec = loaded
        except (OSError, ValueError, EOFError, TypeError):
            pass
        with contextlib.suppress(OSError, UnicodeDecodeError):  # prompt given on stdin
            spec["_stdin"] = (td / "stdin").read_text(encoding="utf-8")
        code: int | None = None
        started = td.stat().st_mtime
        ended: float | None = None
        try:
            info = json.loads((td / "exit").read_text(encoding="utf-8"))
            code = int(info["code"])
            started = float(info.get("started") or started)
            ended = float(info.get("ended") or 0) or None
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            size = (td / "stdout").stat().st_size
        except OSError:
            size = 0
        out.append((int(e.name), spec, started, ended, code, size))
    return out


def _agent(spec: dict[str, Any]) -> tuple[str, list[str] | None]:
    """The agent that ran the last turn: a built-in whose binary is argv[0], else the
    ``command`` agent with that argv (what ``--cmd`` gave)."""
    from parallel_agents.agents.registry import BUILTIN, get_agent

    argv = [str(a) for a in spec.get("argv") or []]
    if not argv:
        return "command", None
    prog = os.path.basename(argv[0])
    for name in BUILTIN:
        if name == "command":
            continue
        try:
            binary = get_agent(name).binary
        except (PAError, ImportError):
            continue
        if binary and os.path.basename(binary) == prog:
            return name, None
    return "command", argv


def _prompt(spec: dict[str, Any], wt: Path, n: int) -> str:
    env = spec.get("env") or {}
    if isinstance(env, dict) and isinstance(env.get("PA_PROMPT"), str):
        return str(env["PA_PROMPT"])
    if isinstance(spec.get("_stdin"), str) and spec["_stdin"].strip():
        return str(spec["_stdin"])
    return f"(prompt of turn {n} not recovered: pa doctor --rebuild; worktree {wt})"


def _checkpoint_refs(repo_path: Path, sid: str) -> dict[int, str]:
    r = git.run(
        ["for-each-ref", "--format=%(refname) %(objectname)", f"refs/pa/sessions/{sid}/turns/"],
        repo_path,
        check=False,
    )
    out: dict[int, str] = {}
    for line in r.stdout.splitlines():
        ref, _, oid = line.partition(" ")
        last = ref.rsplit("/", 1)[-1]
        if last.isdigit():
            out[int(last)] = oid
    return out

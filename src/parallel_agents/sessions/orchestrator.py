"""The orchestrator's verbs: register repos (``repos.py``), start, continue, stop, discard,
restore.

Interfaces (CLI, server) call these; they call git, worktrees, agents and the store.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.agents import get_agent
from parallel_agents.config import Settings, load_repo_config, load_settings
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.git import worktrees
from parallel_agents.git.session_archive import (
    ARCHIVE_PREFIX,
    archive_kind,
    archive_session,
    checkout_tree,
    free_branch,
    orphan_archive,
)
from parallel_agents.models import Repo, Session, Status
from parallel_agents.runtime import local
from parallel_agents.sessions import (
    lineage,
    pool_fill,
    ports,
    repos,
    runtime_choice,
    shell,
    workspace_run,
)
from parallel_agents.sessions.from_work import owns_branch
from parallel_agents.sessions.headless import ACTIVE, Supervisor
from parallel_agents.store import Store


def slugify(text: str, max_len: int = 24) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", norm).strip("-").lower()
    slug = slug[:max_len].rstrip("-")
    return slug or "session"


_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


MAX_TITLE = 200  # characters: a title is a name in lists, not a second prompt


def check_text(what: str, text: str) -> None:
    """Refuse text no process can receive (argv, environment and files are C strings)."""
    if "\0" in text:
        raise UsageError(
            f"the {what} contains a NUL byte (\\0), which no program can receive",
            hint=f"remove the NUL bytes from the {what}",
        )


def check_env(env: dict[str, str]) -> None:
    """Refuse environment entries the agent's process could not be started with."""
    for key, value in env.items():
        if not _ENV_KEY.fullmatch(key):
            raise UsageError(
                f"environment variable name {key!r} is not valid",
                hint="names are letters, digits and '_', not starting with a digit",
            )
        check_text(f"value of environment variable {key}", value)


def default_title(prompt: str) -> str:
    first = prompt.strip().splitlines()[0] if prompt.strip() else "session"
    return first[:72]


@dataclass
class App:
    """One orchestrator instance: settings, store and supervisor for a PA_HOME."""

    settings: Settings
    store: Store
    sup: Supervisor
    # Seconds per step of this App's last ``new_session`` (the bench's breakdown, and the
    # server's Server-Timing header): a dict of phase -> seconds, in order.
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings | None = None) -> App:
        settings = settings or load_settings()
        store = Store(settings.home)
        return cls(settings, store, Supervisor(store, settings))

    def close(self) -> None:
        self.store.close()

    # -- repos (sessions/repos.py) ---------------------------------------------------
    def add_repo(self, path: str | Path, name: str | None = None, base: str | None = None) -> Repo:
        return repos.add(self.store, self.settings.home, Path(path), name, base)

    def move_repo(self, name: str, path: str | Path) -> dict[str, Any]:
        """Re-point repo ``name`` at the folder it was moved to; repair worktree links."""
        return repos.move(self.store, name, Path(path))

    def find_repo(self, ref: str | None, cwd: Path | None = None, *, register: bool = True) -> Repo:
        """A repo by name or path; with no ref, the git repo around ``cwd``."""
        return repos.find(self.store, self.settings.home, ref, cwd, register=register)

    def remove_repo(self, name: str) -> Repo:
        return repos.remove(self.store, self.settings, name)

    # -- sessions -------------------------------------------------------------------
    def new_session(
        self,
        prompt: str,
        *,
        repo: str | None = None,
        cwd: Path | None = None,
        agent: str | None = None,
        cmd: list[str] | None = None,
        model: str | None = None,
        base: str | None = None,
        title: str | None = None,
        interactive: bool = False,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        on_branch: str | None = None,
        parent: str | None = None,
        runtime: str | None = None,
    ) -> Session:
        """``options`` are stored with the session (e.g. ``{"group": {"id", "key"}}``: the
        group task it runs for, issue 15). ``on_branch``: work on that existing branch
        instead of a new one (issue 16 §4, ``sessions/from_work.py``). ``parent``: the
        session that starts this one (issue 18, ``sessions/lineage.py``). ``runtime``: where
        its turns run (issue 19; default: setting ``runtime.kind``)."""
        ph: dict[str, float] = {}
        self.timings = ph
        lap = _Lap(ph)
        if not prompt.strip() and not interactive:
            raise UsageError("the prompt is empty", hint="say what the agent should do")
        check_text("prompt", prompt)
        for what, value in (("title", title), ("model", model), ("base", base)):
            if value is not None:
                check_text(what, value)
        for arg in cmd or []:
            check_text("--cmd", arg)
        if env:
            check_env(env)
        agent_name = agent or ("command" if cmd else str(self.settings.default_agent))
        adapter = get_agent(agent_name)
        if agent_name == "command" and not cmd:
            raise UsageError(
                "the command agent needs --cmd 'PROGRAM ARGS…'",
                hint="or choose a real agent with --agent (claude, codex, gemini, …)",
            )
        settings = self.settings.agent_settings(agent_name)
        if agent_name == "command":
            assert cmd is not None
            adapter.build(_probe_ctx(cmd))  # validates the program exists, before any git work
        else:
            adapter.resolve_binary(settings)
        model = model or settings.get("model")
        lead = lineage.resolve_parent(self.store, parent) if parent is not None else None
        kind = runtime_choice.check(
            self.settings, runtime, interactive=interactive, agent=agent_name
        )
        lap("checks")
        r = self.find_repo(repo, cwd)
        repo_path = Path(r.path)
        if not (repo_path / ".git").exists():
            raise repos.missing_repo_error(r)
        base_ref, base_commit = _start_point(repo_path, base or r.base)
        if on_branch is not None and base_commit is not None:
            from parallel_agents.sessions import from_work

            base_commit = from_work.check_branch(repo_path, on_branch, base_commit)
        if base_commit is None:
            raise UsageError(
                f"unknown base {base_ref!r}: it names no commit in {repo_path}",
                hint="pass an existing branch, tag or commit with --base",
            )
        lap("repo")  # the repo, its base commit (one git process)
        rcfg = load_repo_config(repo_path)  # validate before creating anything
        if rcfg.copy:
            worktrees.plan_copy(repo_path, rcfg.copy)  # refuses escapes before any git work
        lap("repo_config")
        sid = secrets.token_hex(4)
        title = (title or default_title(prompt)).strip() or "session"
        branch = on_branch or f"pa/{slugify(title)}-{sid}"
        wt = self.settings.worktree_root / r.name / sid
        now = time.time()
        s = Session(
            id=sid,
            title=title,
            repo_id=r.id,
            repo_name=r.name,
            branch=branch,
            base_ref=base_ref,
            base_commit=base_commit,
            worktree=str(wt),
            agent=agent_name,
            model=model,
            status=Status.STARTING,
            agent_session_id=None,
            created_at=now,
            updated_at=now,
            cmd=cmd,
            interactive=interactive,
            # ``options``: what the caller tags it with (a reviewer names what it reviews,
            # a group's session its group and task), stored with the row itself so a crash
            # right after cannot orphan the session from its task
            options={
                **(options or {}),
                **({"timeout": timeout} if timeout else {}),
                **({"runtime": kind} if kind != "local" else {}),
            },
        )
        with lineage.ADMIT:  # issue 18: the caps, checked together with the insert
            if lead is not None:
                s.options["parent"] = lineage.admit(self.store, self.settings, lead)
            # Issue 16 §1: its ports first: when none are left, nothing is made at all.
            ports.allocate(self.store, self.settings, sid, rcfg.ports)
            self.store.insert_session(s)
        if env:
            self.sup.write_session_env(sid, env)
        lap("store_insert")
        try:
            if on_branch is not None:
                worktrees.add_on_branch(repo_path, wt, on_branch)
            elif pool_fill.take(self.settings, repo_path, r.name, wt, branch, base_commit):
                lap("pool_take")
            else:
                lap("pool_miss")
                made: dict[str, float] = {}
                worktrees.create(repo_path, wt, branch, base_commit, made)
                lap("create")
                ph.pop("create")
                ph.update({f"worktree_{k}": v for k, v in made.items()})
            worktrees.mark_owner(wt, self.settings.home)
            lap("mark_owner")
        except (PAError, OSError) as e:
            msg = f"could not create the worktree: {e}"
            ports.release(self.store, sid)
            self.store.set_status(sid, Status.FAILED, error=msg)
            raise PAError(msg) from e
        if rcfg.copy:
            try:
                worktrees.copy_untracked(repo_path, wt, rcfg.copy)
            except (PAError, OSError) as e:
                # Nothing of anyone's work is in the fresh worktree yet: no half-made one stays.
                worktrees.remove(repo_path, wt, branch, delete_branch=on_branch is None)
                ports.release(self.store, sid)
                msg = f"could not copy the files of copy = [...] into the worktree: {e}"
                self.store.set_status(sid, Status.FAILED, error=msg)
                raise PAError(msg, hint="fix copy = [...] in .parallel-agents.toml") from e
            lap("copy")
        with self.store.tx() as db:
            self.store.add_turn(db, sid, prompt, {})
            # Queued only when it has to wait: otherwise it stays `starting` till it runs.
            now = not interactive and self.sup.fits_now(db, sid)
            if not now:
                self.store.set_status(sid, Status.QUEUED, db=db)
        lap("schedule")  # the turn stored, a place among the running sessions
        if interactive:
            from parallel_agents.sessions import tui as tmux

            tmux.start_interactive(self, sid)
        elif now:
            self.sup.start(sid, claimed=True)
        else:
            self.sup.schedule()
        lap("start")  # the wrapper launched (its own start-up follows, off this path)
        out = self.store.session(sid)
        lap("reply")
        return out

    def send(self, sid: str, prompt: str) -> Session:
        s = self.store.resolve_session(sid)
        if not prompt.strip():
            raise UsageError("the follow-up prompt is empty")
        check_text("prompt", prompt)
        if s.interactive and s.status != Status.DISCARDED:
            from parallel_agents.sessions import tui as tmux

            repos.require_usable(self.store, s)

            # Types into the live TUI, or restarts it (resuming the agent's own session).
            tmux.send_text(self, s, prompt)
            return self.store.session(s.id)
        if s.status in (Status.QUEUED, *ACTIVE):
            raise Conflict(
                f"session {s.id} is still {s.status.value}; a follow-up is not queued",
                hint=f"wait for it (pa wait {s.id}) or stop it (pa stop {s.id}), then send",
            )
        if s.status == Status.DISCARDED:
            raise Conflict(
                f"session {s.id} was discarded", hint=f"bring it back first: pa restore {s.id}"
            )
        if not Path(s.worktree).is_dir():
            raise Conflict(
                f"the worktree of session {s.id} is gone ({s.worktree})",
                hint=f"pa discard {s.id} to clean up",
            )
        # An agent in a worktree cut off from its repository works blind (no checkpoints).
        repos.require_usable(self.store, s)
        with self.store.tx() as db:
            self.store.add_turn(db, s.id, prompt, {})
            now = self.sup.fits_now(db, s.id)
            status = Status.STARTING if now else Status.QUEUED
            self.store.set_status(s.id, status, db=db, error=None)
        if now:
            self.sup.start(s.id, claimed=True)
        else:
            self.sup.schedule()
        return self.store.session(s.id)

    def stop(self, sid: str) -> Session:
        s = self.store.resolve_session(sid)
        if s.interactive:
            from parallel_agents.sessions import tui as tmux

            tmux.stop_interactive(self, s)
        else:
            self.sup.stop(s.id)
        # What the agent started in the background (setsid daemons too) ends with it.
        local.end_tagged(s.id)
        return self.store.session(s.id)

    def mark_read(self, sid: str) -> None:
        if self.store.read_only:  # a full disk: reading must still work (issue 14 §5)
            return
        self.store.update_session(sid, unread=False)
        self.store.mark_runs_read([sid])  # issue 17: a routine run leaves the inbox

    def rename(self, sid: str, title: str) -> Session:
        """Give a session a new title. Its branch keeps its name: a branch someone may
        already have pushed or checked out is not renamed behind their back."""
        s = self.store.resolve_session(sid)
        title = " ".join(title.split())
        if not title:
            raise UsageError("the title is empty", hint="say what the session is about")
        check_text("title", title)
        if len(title) > MAX_TITLE:
            raise UsageError(
                f"the title is {len(title)} characters long; at most {MAX_TITLE} fit",
                hint="shorten it: the prompt keeps the details",
            )
        if title != s.title:
            self.store.update_session(s.id, title=title)
            # The event tells every dashboard and `pa logs` reader, as it happens.
            self.store.add_event(s.id, "renamed", {"from": s.title, "to": title})
        return self.store.session(s.id)

    def discard(self, sid: str) -> tuple[Session, dict[str, Any]]:
        """Archive the final state (see ``archive.py``: files, ignored files, staging area,
        empty folders, nested repositories) under a new ``refs/pa/archive/<id>…`` ref, then
        remove worktree and branch.

        Crash-safe: the archive is complete and recorded as the session's ``discarding``
        intent before anything is removed; a retry (or ``pa doctor --repair``) finishes
        from that intent and never archives the half-removed worktree again.
        """
        s = self.store.resolve_session(sid)
        if s.status == Status.DISCARDED:
            raise Conflict(f"session {s.id} is already discarded", hint=f"pa restore {s.id}")
        if s.interactive or s.status in ACTIVE or s.status == Status.QUEUED:
            self.stop(s.id)  # an idle TUI is still a process in the worktree
            s = self.store.session(s.id)
        shell.end(self.store.home, s.id)  # issue 16 §2: its terminal goes with the worktree
        local.end_tagged(s.id)  # nothing the agent started may live on in a deleted worktree
        repo_path = Path(self.store.repo(s.repo_id).path)
        if not s.options.get("discarding"):
            archive = archive_session(repo_path, s, stash=False)
            opts = dict(s.options)
            opts["discarding"] = archive
            self.store.update_session(s.id, options=opts)
            s = self.store.session(s.id)
        return self.finish_discard(s)

    def finish_discard(self, s: Session) -> tuple[Session, dict[str, Any]]:
        """Second half of a discard, from its recorded intent (idempotent)."""
        from parallel_agents.git import archive as archive_mod

        archive = dict(s.options["discarding"])
        repo_path = Path(self.store.repo(s.repo_id).path)
        wt = Path(s.worktree)
        if archive.get("ref") and archive.get("nested"):
            archive_mod.stash_nested(repo_path, wt, archive["ref"], archive["nested"])
        workspace_run.before_remove(self.store, s, repo_path)  # issue 16 §1: run, archive
        try:
            worktrees.remove(repo_path, wt, s.branch, delete_branch=owns_branch(s))
        except PAError as e:
            raise PAError(
                f"the discard of {s.id} could not finish: {e.message}",
                hint=f"its archive {archive.get('ref')} is complete and kept; run "
                f"`pa doctor --repair` (it finishes the discard), or fix the cause and run "
                f"`pa discard {s.id}` again",
            ) from e
        opts = dict(s.options)
        opts.pop("discarding", None)
        opts["archive"] = archive
        self.store.set_status(s.id, Status.DISCARDED, options=opts)
        ports.release(self.store, s.id)
        self.sup.release(s)  # issue 19: archived above, so its Ray slot may go
        return self.store.session(s.id), archive

    def restore(self, sid: str, archive_ref: str | None = None) -> Session:
        """Bring a session back from its archive (or from ``archive_ref``, e.g. one of
        ``pa doctor``'s ``refs/pa/archive/orphan-…``). Never moves an existing branch
        that has commits the archive lacks: the session then gets a new branch name."""
        s = self.store.resolve_session(sid)
        if s.options.get("discarding") and s.status != Status.DISCARDED:
            s, _ = self.finish_discard(s)  # a discard that crashed half-way
        repo_path = Path(self.store.repo(s.repo_id).path)
        wt = Path(s.worktree)
        if archive_ref is None and s.status != Status.DISCARDED:
            archive_ref = orphan_archive(repo_path, s) if not wt.is_dir() else None
            if archive_ref is None:
                raise Conflict(
                    f"session {s.id} is {s.status.value}, not discarded",
                    hint="its worktree is there: nothing to restore"
                    if wt.is_dir()
                    else f"no archive of it was found; name one: pa restore {s.id} --archive REF",
                )
        info = dict(s.options.get("archive") or {})
        ref = archive_ref or info.get("ref") or ARCHIVE_PREFIX + s.id
        if archive_ref is not None and not archive_ref.startswith("refs/"):
            ref = ARCHIVE_PREFIX + archive_ref
        commit = git.rev_parse(repo_path, ref)
        if commit is None and archive_ref is None:
            # No archive of its own: pa doctor may have archived its leftover worktree.
            archive_ref = orphan_archive(repo_path, s)
            if archive_ref is not None:
                ref, commit = archive_ref, git.rev_parse(repo_path, archive_ref)
        if commit is None:
            raise NotFound(f"no archive {ref} in {repo_path}: nothing to restore")
        kind = archive_kind(repo_path, commit) if archive_ref else info.get("kind", "checkpoint")
        if wt.exists() and any(wt.iterdir()):
            raise Conflict(f"{wt} exists and is not empty; move it away first")
        from parallel_agents.git import archive as archive_mod
        from parallel_agents.git import snapshots

        if kind == "branch":
            head = commit
        elif kind == "files":
            head = s.base_commit
        else:
            head = git.out(["rev-parse", f"{commit}^"], repo_path)
        branch = free_branch(repo_path, s.branch, head)
        worktrees.attach(repo_path, wt, branch, head)
        worktrees.mark_owner(wt, self.settings.home)
        notes: list[str] = []
        if kind == "files":
            checkout_tree(wt, commit)
        elif kind != "branch":
            snapshots.restore(wt, commit)
            notes = archive_mod.restore_extras(repo_path, wt, commit, ref)
        try:
            # Unchanged copies (a .env) are never archived: copy them in again.
            rcfg = load_repo_config(repo_path)
            if rcfg.copy:
                worktrees.copy_untracked(repo_path, wt, rcfg.copy, missing_only=True)
        except (PAError, OSError) as e:
            self.store.add_event(
                s.id, "error", {"message": f"could not copy the copy = [...] files: {e}"}
            )
        try:  # issue 16 §1: the discard gave its ports back; a new block, when there is one
            if not self.store.session_ports(s.id):
                ports.allocate(self.store, self.settings, s.id, load_repo_config(repo_path).ports)
        except PAError as e:
            notes.append(f"no ports for it: {e.message}")
        if branch != s.branch:
            notes.append(
                f"branch {s.branch} has commits the archive does not have (or is checked "
                f"out elsewhere): it was left as it is and the session now works on {branch}"
            )
        opts = dict(s.options)
        opts["restore_notes"] = notes
        fields: dict[str, Any] = {"options": opts}
        if branch != s.branch:
            fields["branch"] = branch
        if s.status == Status.DISCARDED:
            self.store.set_status(s.id, Status.IDLE, unread=False, **fields)
        else:
            self.store.update_session(s.id, **fields)
        return self.store.session(s.id)

    def refresh(self) -> None:
        """Bring statuses up to date when no server does it for us."""
        if self.store.read_only:  # a full disk: show what is stored (issue 14 §5)
            return
        for _ in range(50):
            if not self.sup.tick().pending:
                break
        self.sup.run_pending_checks()


def _start_point(repo_path: Path, base: str | None) -> tuple[str, str | None]:
    """(base ref, its commit or None) of a new session of the repo at ``repo_path``.

    One git process when all is well (it is on the path of every session start); the
    step-by-step checks of ``validate_repo_path`` otherwise, for their clear errors.
    """
    info = git.start_info(repo_path, base)
    if info is not None and repos.same_dir(info.toplevel, repo_path):
        return base or info.branch or "HEAD", info.base if base else info.head
    repos.validate_repo_path(repo_path)
    base_ref = base or git.current_branch(repo_path) or "HEAD"
    return base_ref, git.rev_parse(repo_path, base_ref)


class _Lap:
    """Records the seconds since the previous call under each name, into ``into``."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = self.into.get(name, 0.0) + now - self.t
        self.t = now


def _probe_ctx(cmd: list[str]) -> Any:
    from parallel_agents.agents.base import TurnContext

    return TurnContext(prompt="", worktree=Path.cwd(), session_dir=Path.cwd(), turn=1, cmd=cmd)

"""The verbs of issue 15 on ``Client``: work bigger than one prompt (a reviewer agent,
best-of-N attempts, plans, map-reduce), one block per feature, as requests to the
server's routes like every other verb (a mixin: ``Client`` carries the transport)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents.client._seg import seg


class OrchestrationVerbs:
    if TYPE_CHECKING:
        timeout: float

        def request(
            self,
            method: str,
            path: str,
            *,
            json_body: Any = None,
            params: dict[str, Any] | None = None,
            timeout: float | None = None,
        ) -> Any: ...

    # -- a reviewer agent (issue 15 §3) -------------------------------------------------------
    def review_start(
        self,
        sid: str,
        *,
        agent: str | None = None,
        cmd: Sequence[str] | str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start a reviewer agent on session ``sid``'s diff: ``{"session", "review"}``."""
        argv = cmd if cmd is None or isinstance(cmd, str) else list(cmd)
        body = {"agent": agent, "cmd": argv, "model": model, "timeout": timeout, "env": env}
        return dict(
            self.request(
                "POST",
                f"/sessions/{seg(sid)}/reviewer",
                json_body={k: v for k, v in body.items() if v is not None},
                timeout=max(self.timeout, 120),
            )
        )

    def review_collect(self, sid: str, rid: str | None = None) -> dict[str, Any]:
        """Read reviewer ``rid``'s answer (None: every reviewer not read yet)."""
        path = f"/sessions/{seg(sid)}/reviewer" + (f"/{seg(rid)}" if rid else "") + "/collect"
        return dict(self.request("POST", path, timeout=max(self.timeout, 120)))

    def review_comments(self, sid: str, *, unsent: bool = False) -> list[dict[str, Any]]:
        params = {"unsent": "true" if unsent else None}
        got = self.request("GET", f"/sessions/{seg(sid)}/review-comments", params=params)
        return list(got["comments"])

    def review_send(self, sid: str, only: Sequence[int] | None = None) -> dict[str, Any]:
        body = {"ids": list(only)} if only is not None else {}
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/review-comments/send", json_body=body)
        )

    # -- groups: best-of-N attempts (issue 15 §2) ------------------------------------------
    def new_attempts(
        self, prompt: str, attempts: int, *, repo: str | None = None, cwd: Path | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """``attempts`` sessions on ``prompt`` as one group (``kw``: agents, cmd, model, base,
        title, timeout, env, name); ``repo`` as in ``new``."""
        where = Path(cwd) if cwd is not None else Path.cwd()
        ref = repo
        if repo is None or "/" in repo or repo in (".", ".."):
            p = where / Path(repo or ".").expanduser()
            ref = str(p.absolute()) if repo is None or p.exists() else repo
        body = {"prompt": prompt, "attempts": attempts, "repo": ref}
        body.update({k: v for k, v in kw.items() if v is not None})
        limit = max(self.timeout, 600.0 + 10.0 * attempts)
        return dict(self.request("POST", "/attempts", json_body=body, timeout=limit))

    def groups(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.request("GET", "/groups", params={"kind": kind})["groups"])

    def group(self, ref: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/groups/{seg(ref)}"))

    def compare(self, ref: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/groups/{seg(ref)}/compare", timeout=600))

    def judge(self, ref: str, agent: str, **kw: Any) -> dict[str, Any]:
        body = {"agent": agent, **{k: v for k, v in kw.items() if v is not None}}
        return dict(self.request("POST", f"/groups/{seg(ref)}/judge", json_body=body, timeout=600))

    def pick(self, ref: str, attempt: str, *, merge: bool = True, **kw: Any) -> dict[str, Any]:
        body = {"attempt": attempt, "merge": merge, **{k: v for k, v in kw.items() if v}}
        return dict(self.request("POST", f"/groups/{seg(ref)}/pick", json_body=body, timeout=3600))

    # -- plans (issue 15 §1) -------------------------------------------------------------------
    def plan_run(self, text: str, **kw: str | None) -> dict[str, Any]:
        """Check a plan file's TOML and start it (``source``, ``folder``, ``cwd``, ``name``)."""
        body = {"text": text, **{k: v for k, v in kw.items() if v is not None}}
        return dict(self.request("POST", "/plans", json_body=body, timeout=600))

    def plans(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/plans", timeout=600)["plans"])

    def plan(self, name: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/plans/{seg(name)}", timeout=600))

    def plan_stop(self, name: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/plans/{seg(name)}/stop", timeout=600))

    def plan_resume(self, name: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/plans/{seg(name)}/resume", timeout=600))

    # -- map-reduce (issue 15 §4: server/routes/maps.py) -------------------------------------
    def map_start(self, template: str, items: str, **kw: Any) -> dict[str, Any]:
        """One session per item of ``items`` (one a line, or JSON lines) on ``template``;
        keywords: repo (name or path, default the cwd's), agent, cmd, model, base, name,
        timeout. Returns the new map group's report."""
        body = {"template": template, "items": items, **kw, "repo": _repo_ref(kw.get("repo"))}
        body = {k: v for k, v in body.items() if v is not None}
        # One worktree per item: a short timeout would invite a retry starting them twice.
        limit = max(self.timeout, 600.0 + 10.0 * (items.count("\n") + 1))
        return dict(self.request("POST", "/maps", json_body=body, timeout=limit))

    def maps(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/maps")["groups"])

    def map_report(self, group: str) -> dict[str, Any]:
        """Each item of group ``group``: state, session, outcome, diff size, check."""
        return dict(self.request("GET", f"/maps/{seg(group)}"))

    def map_resume(self, group: str) -> dict[str, Any]:
        """Start the items of ``group`` pa stopped before starting (none twice)."""
        limit = max(self.timeout, 600.0)
        return dict(self.request("POST", f"/maps/{seg(group)}/resume", timeout=limit))

    def reduce(self, group: str, **kw: Any) -> dict[str, Any]:
        """Merge map group ``group``'s successful items and start a reducer session on
        them; keywords: agent, cmd, model, prompt, name, timeout."""
        body = {k: v for k, v in kw.items() if v is not None}
        path = f"/maps/{seg(group)}/reduce"
        return dict(self.request("POST", path, json_body=body, timeout=max(self.timeout, 900.0)))

    # -- workspaces (issue 16 §3) ----------------------------------------------------
    def open_worktree(
        self, sid: str, editor: str | None = None, *, print_only: bool = False
    ) -> dict[str, Any]:
        """Open session ``sid``'s worktree in a GUI editor on the server's machine (only
        from 127.0.0.1); ``print_only``: the command, not run."""
        body: dict[str, Any] = {"print": print_only}
        if editor:
            body["editor"] = editor
        return dict(self.request("POST", f"/sessions/{seg(sid)}/open", json_body=body))

    # -- pairing mode (issue 16 §5: server/routes/pairing.py) -----------------------------
    def pair(self, sid: str) -> dict[str, Any]:
        """Show session ``sid``'s files in its repository's main checkout."""
        return dict(self.request("POST", f"/sessions/{seg(sid)}/pair", timeout=600))

    def pair_status(self, sid: str | None = None) -> list[dict[str, Any]]:
        path = "/pairing" + (f"?session={seg(sid)}" if sid else "")
        return list(self.request("GET", path, timeout=600)["pairings"])

    def pair_stop(self, sid: str | None = None, *, keep: bool = False) -> dict[str, Any]:
        """Put the paired main checkout back as it was (``keep``: leave the branch)."""
        body = {"session": sid, "keep": keep}
        return dict(self.request("POST", "/pairing/stop", json_body=body, timeout=600))

    # -- run scripts and ports (issue 16 §1: server/routes/run.py) ---------------------------
    def run_status(self, sid: str) -> dict[str, Any]:
        """Session ``sid``'s run script: running, pid, log (tail), ports and their URLs."""
        return dict(self.request("GET", f"/sessions/{seg(sid)}/run"))

    def run_start(self, sid: str) -> dict[str, Any]:
        """Start the repo's run script in ``sid``'s worktree; its status."""
        limit = max(self.timeout, 60.0)
        return dict(self.request("POST", f"/sessions/{seg(sid)}/run", timeout=limit))

    def run_stop(self, sid: str) -> dict[str, Any]:
        """End ``sid``'s run script (its whole process group); its status."""
        limit = max(self.timeout, 60.0)
        return dict(self.request("POST", f"/sessions/{seg(sid)}/run/stop", timeout=limit))


    # -- routines (issue 17: server/routes/routines.py) --------------------------------------
    def routine_add(self, name: str, prompt: str, **fields: Any) -> dict[str, Any]:
        """Add routine ``name`` (fields as routes/routines.py:NewRoutine); its JSON."""
        body = {"name": name, "prompt": prompt, **fields}
        if body.get("repo") is not None:
            body["repo"] = _repo_ref(body["repo"])
        limit = max(self.timeout, 60.0)
        return dict(self.request("POST", "/routines", json_body=body, timeout=limit))

    def routines(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/routines")["routines"])

    def routine(self, name: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/routines/{seg(name)}"))

    def routine_pause(self, name: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/routines/{seg(name)}/pause"))

    def routine_resume(self, name: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/routines/{seg(name)}/resume"))

    def routine_remove(self, name: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/routines/{seg(name)}"))

    def routine_run(self, name: str) -> dict[str, Any]:
        """Start a run of ``name`` now; the run's JSON."""
        limit = max(self.timeout, 120.0)
        return dict(self.request("POST", f"/routines/{seg(name)}/run", timeout=limit))

    def routine_history(self, name: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/routines/{seg(name)}/history")["runs"])

    # -- the inbox (issue 17: server/routes/inbox.py) ----------------------------------------
    def inbox(self, *, all: bool = False, routine: str | None = None) -> list[dict[str, Any]]:
        """Routine runs waiting unread (``all``: every run with a session), newest first."""
        params = {"all": "true" if all else None, "routine": routine}
        return list(self.request("GET", "/inbox", params=params)["runs"])

    def inbox_read(
        self, ids: list[str], *, all: bool = False, routine: str | None = None
    ) -> list[str]:
        """Mark the runs of sessions ``ids`` (or ``all`` unread runs) read; the ids marked."""
        body = {"ids": ids, "all": all, "routine": routine}
        return list(self.request("POST", "/inbox/read", json_body=body)["read"])
    # -- a routine's HTTP trigger (issue 17: server/routes/routine_api.py) -------------------
    def routine_token_rotate(self, name: str) -> dict[str, Any]:
        """A new token for ``name``'s HTTP trigger (the old one is revoked): shown once."""
        return dict(self.request("POST", f"/routines/{seg(name)}/token"))

    def routine_calls(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The calls to ``name``'s HTTP trigger, newest first: at, remote, code, run."""
        path = f"/routines/{seg(name)}/calls"
        return list(self.request("GET", path, params={"limit": limit})["calls"])

    # -- where sessions run (issue 19: server/routes/runtime.py) -----------------------------
    def runtime_nodes(self, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The Ray cluster's nodes: slots, CLIs and versions, sessions there."""
        params = {"refresh": "true" if refresh else None}
        return list(self.request("GET", "/runtime/nodes", params=params)["nodes"])

def _repo_ref(repo: str | Path | None) -> str:
    """A repo name as it is; a path (or None: the cwd) made absolute."""
    if isinstance(repo, str) and "/" not in repo and repo not in (".", ".."):
        return repo
    return str(Path(repo or Path.cwd()).expanduser().absolute())

"""What the CLI talks to: the server's API when one runs (started on demand), else the
orchestrator in-process. Both answer with the same JSON-shaped dicts.

The in-process path is safe next to a server: ingestion and status changes are
transactional and idempotent, so whichever process gets there first does the work.
It serves `PA_SERVER_AUTOSTART=0` / ``server.autostart = false`` and the case where the
server cannot start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from parallel_agents.client import Client
    from parallel_agents.sessions.orchestrator import App


def _seg(value: str) -> str:
    """One URL path segment: an id like 'x?y' or '%' is data, never URL syntax."""
    from parallel_agents.client import seg

    return seg(value)


class Backend(Protocol):
    remote: bool = False

    def refresh(self) -> None:
        """Bring statuses up to date (a no-op when the server does it continuously)."""
        return None

    # repos
    def repo_add(self, path: str, name: str | None, base: str | None) -> dict[str, Any]: ...
    def repo_ls(self) -> list[dict[str, Any]]: ...
    def repo_rm(self, name: str) -> dict[str, Any]: ...
    def repo_move(self, name: str, path: str) -> dict[str, Any]: ...

    # sessions
    def new(self, prompt: str, **kw: Any) -> dict[str, Any]: ...
    def sessions(self, *, all: bool = False) -> list[dict[str, Any]]: ...
    def session(self, sid: str) -> dict[str, Any]: ...
    def events(self, sid: str, after_seq: int = 0) -> list[dict[str, Any]]: ...
    def send(self, sid: str, prompt: str) -> dict[str, Any]: ...
    def stop(self, sid: str) -> dict[str, Any]: ...
    def discard(self, sid: str) -> dict[str, Any]: ...
    def restore(self, sid: str, archive: str | None = None) -> dict[str, Any]: ...
    def mark_read(self, sid: str) -> None: ...

    # review
    def diff_json(self, sid: str, turn: int | None) -> dict[str, Any]: ...
    def diff_text(
        self, sid: str, turn: int | None, *, stat: bool, name_only: bool
    ) -> Iterator[str]: ...
    def check(self, sid: str, command: str | None, timeout: float | None) -> dict[str, Any]: ...
    def rollback(self, sid: str, turn: int) -> dict[str, Any]: ...
    def conflicts(self, repo: str | None) -> dict[str, Any]: ...
    def merge(self, ids: list[str], **kw: Any) -> dict[str, Any]: ...
    def pr(self, sid: str, draft: bool) -> dict[str, Any]: ...


def _session_json(app: App, sid: str, *, full: bool = False) -> dict[str, Any]:
    from parallel_agents.sessions import review as review_service

    s = app.store.session(sid)
    d = s.to_json()
    d["worktree_exists"] = Path(s.worktree).is_dir()
    if full:
        d["turns"] = [t.to_json() for t in app.store.turns(s.id)]
        d["check"] = review_service.last_check(app.store, s.id)
    return d


class LocalBackend(Backend):
    def __init__(self, app: App) -> None:
        self.app = app

    def refresh(self) -> None:
        self.app.refresh()

    def repo_add(self, path: str, name: str | None, base: str | None) -> dict[str, Any]:
        return dict(self.app.add_repo(path, name=name, base=base).__dict__)

    def repo_ls(self) -> list[dict[str, Any]]:
        return [dict(r.__dict__) for r in self.app.store.repos()]

    def repo_rm(self, name: str) -> dict[str, Any]:
        return dict(self.app.remove_repo(name).__dict__)

    def repo_move(self, name: str, path: str) -> dict[str, Any]:
        return self.app.move_repo(name, path)

    def new(self, prompt: str, **kw: Any) -> dict[str, Any]:
        s = self.app.new_session(prompt, **kw)
        return _session_json(self.app, s.id)

    def sessions(self, *, all: bool = False) -> list[dict[str, Any]]:
        from parallel_agents.sessions.review import check_summaries

        checks = check_summaries(self.app.store)
        out = []
        for s in self.app.store.sessions():
            if all or s.status.live:
                d = s.to_json()
                d["worktree_exists"] = Path(s.worktree).is_dir()
                d["check"] = checks.get(s.id)
                out.append(d)
        return out

    def session(self, sid: str) -> dict[str, Any]:
        return _session_json(self.app, self.app.store.resolve_session(sid).id, full=True)

    def events(self, sid: str, after_seq: int = 0) -> list[dict[str, Any]]:
        s = self.app.store.resolve_session(sid)
        return [e.to_json() for e in self.app.store.events(s.id, after_seq=after_seq)]

    def send(self, sid: str, prompt: str) -> dict[str, Any]:
        return _session_json(self.app, self.app.send(sid, prompt).id)

    def stop(self, sid: str) -> dict[str, Any]:
        return _session_json(self.app, self.app.stop(sid).id)

    def discard(self, sid: str) -> dict[str, Any]:
        s, archive = self.app.discard(sid)
        d = _session_json(self.app, s.id)
        d["archive"] = archive
        return d

    def restore(self, sid: str, archive: str | None = None) -> dict[str, Any]:
        s = self.app.restore(sid, archive)
        d = _session_json(self.app, s.id)
        d["notes"] = list(s.options.get("restore_notes") or [])
        return d

    def mark_read(self, sid: str) -> None:
        self.app.mark_read(self.app.store.resolve_session(sid).id)

    def _range(self, sid: str, turn: int | None) -> tuple[Path, str, str, str | None]:
        from parallel_agents.sessions import review as review_service

        s = self.app.store.resolve_session(sid)
        base, target, note = review_service.diff_range(self.app.store, s, turn)
        return Path(self.app.store.repo(s.repo_id).path), base, target, note

    def diff_json(self, sid: str, turn: int | None) -> dict[str, Any]:
        from parallel_agents.git import diffs

        repo, base, target, note = self._range(sid, turn)
        files = diffs.diff_files(repo, base, target)
        return {
            "session": self.app.store.resolve_session(sid).id,
            "base": base,
            "target": target,
            "turn": turn,
            "note": note,
            "files": [f.to_json() for f in files],
        }

    def diff_text(
        self, sid: str, turn: int | None, *, stat: bool, name_only: bool
    ) -> Iterator[str]:
        from parallel_agents.git import diffs

        repo, base, target, note = self._range(sid, turn)
        if note:
            import sys

            print(note, file=sys.stderr)
        return diffs.diff_stream(repo, base, target, stat=stat, name_only=name_only)

    def check(self, sid: str, command: str | None, timeout: float | None) -> dict[str, Any]:
        from parallel_agents.sessions import review as review_service
        from parallel_agents.sessions.orchestrator import App

        # Checks of several sessions run on threads: each needs its own connection.
        local = App.open(self.app.settings)
        try:
            s = local.store.resolve_session(sid)
            return review_service.run_check(local.store, local.settings, s, command, timeout)
        finally:
            local.close()

    def rollback(self, sid: str, turn: int) -> dict[str, Any]:
        from parallel_agents.sessions import review as review_service

        s = self.app.store.resolve_session(sid)
        return review_service.rollback(self.app.store, s, turn)

    def conflicts(self, repo: str | None) -> dict[str, Any]:
        from parallel_agents.sessions import review as review_service

        rid = self.app.find_repo(repo, register=False).id if repo else None
        return review_service.conflicts(self.app.store, rid)

    def merge(self, ids: list[str], **kw: Any) -> dict[str, Any]:
        from parallel_agents.sessions import merge as merge_service

        return merge_service.merge_sessions(self.app, ids, **kw)

    def pr(self, sid: str, draft: bool) -> dict[str, Any]:
        from parallel_agents.sessions import merge as merge_service

        return merge_service.pr(self.app, sid, draft=draft)


class RemoteBackend(Backend):
    remote = True

    def __init__(self, client: Client) -> None:
        self.c = client

    def repo_add(self, path: str, name: str | None, base: str | None) -> dict[str, Any]:
        return self.c.add_repo(str(Path(path).expanduser().absolute()), name=name, base=base)

    def repo_ls(self) -> list[dict[str, Any]]:
        return self.c.list_repos()

    def repo_rm(self, name: str) -> dict[str, Any]:
        return self.c.remove_repo(name)

    def repo_move(self, name: str, path: str) -> dict[str, Any]:
        body = {"path": str(Path(path).expanduser().absolute())}
        return dict(self.c.request("POST", f"/repos/{name}/move", json_body=body))

    def new(self, prompt: str, **kw: Any) -> dict[str, Any]:
        repo = kw.pop("repo", None)
        cwd = kw.pop("cwd", None) or Path.cwd()
        if repo is None:
            repo = str(Path(cwd).absolute())
        elif Path(repo).expanduser().exists() and ("/" in repo or repo in (".", "..")):
            repo = str(Path(repo).expanduser().absolute())
        [s] = self.c.new_sessions(prompt, repo=repo, **kw)
        return s

    def sessions(self, *, all: bool = False) -> list[dict[str, Any]]:
        return self.c.list_sessions(all=all)

    def session(self, sid: str) -> dict[str, Any]:
        d = self.c.get_session(sid)
        d["check"] = self.c.request("GET", f"/sessions/{_seg(d['id'])}/check")["check"]
        return d

    def events(self, sid: str, after_seq: int = 0) -> list[dict[str, Any]]:
        return self.c.events(sid, after_seq=after_seq)

    def send(self, sid: str, prompt: str) -> dict[str, Any]:
        return self.c.send(sid, prompt)

    def stop(self, sid: str) -> dict[str, Any]:
        return self.c.stop(sid)

    def discard(self, sid: str) -> dict[str, Any]:
        return self.c.discard(sid)

    def restore(self, sid: str, archive: str | None = None) -> dict[str, Any]:
        return self.c.restore(sid, archive)

    def mark_read(self, sid: str) -> None:
        self.c.mark_read(sid)

    def diff_json(self, sid: str, turn: int | None) -> dict[str, Any]:
        return dict(
            self.c.request(
                "GET", f"/sessions/{_seg(sid)}/diff", params={"turn": turn, "format": "json"}
            )
        )

    def diff_text(
        self, sid: str, turn: int | None, *, stat: bool, name_only: bool
    ) -> Iterator[str]:
        if name_only:
            d = self.diff_json(sid, turn)
            return iter([f["path"] + "\n" for f in d["files"]])
        return self.c.stream_text(
            f"/sessions/{_seg(sid)}/diff",
            params={"turn": turn, "format": "stat" if stat else "patch"},
        )

    def check(self, sid: str, command: str | None, timeout: float | None) -> dict[str, Any]:
        body = {k: v for k, v in {"command": command, "timeout": timeout}.items() if v}
        limit = (timeout or 600) + 60
        return dict(
            self.c.request("POST", f"/sessions/{_seg(sid)}/check", json_body=body, timeout=limit)
        )

    def rollback(self, sid: str, turn: int) -> dict[str, Any]:
        return dict(
            self.c.request("POST", f"/sessions/{_seg(sid)}/rollback", json_body={"turn": turn})
        )

    def conflicts(self, repo: str | None) -> dict[str, Any]:
        return dict(self.c.request("GET", "/conflicts", params={"repo": repo}, timeout=600))

    def merge(self, ids: list[str], **kw: Any) -> dict[str, Any]:
        body = {"ids": ids, **{k: v for k, v in kw.items() if v is not None}}
        return dict(self.c.request("POST", "/merge", json_body=body, timeout=3600))

    def pr(self, sid: str, draft: bool) -> dict[str, Any]:
        return dict(
            self.c.request(
                "POST", f"/sessions/{_seg(sid)}/pr", json_body={"draft": draft}, timeout=600
            )
        )


def autostart_enabled(settings: Any) -> bool:
    env = os.environ.get("PA_SERVER_AUTOSTART")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    val = settings.get("server.autostart")
    return True if val is None else bool(val)


def connect() -> Backend:
    """The running server (started in the background if allowed), else in-process."""
    from parallel_agents.config import load_settings
    from parallel_agents.server import daemon

    settings = load_settings()
    info = daemon.status(settings.home)
    if info is None:
        # Only when this process may write there (a running server has its home; the
        # store is heavy to import for a thin client).
        from parallel_agents.store import ensure_home

        ensure_home(settings.home)
    if info is None and autostart_enabled(settings):
        from parallel_agents.client import ensure_server

        return RemoteBackend(ensure_server(settings.home))
    if info is not None:
        from parallel_agents.client import Client

        return RemoteBackend(Client.from_home(settings.home))
    from parallel_agents.sessions.orchestrator import App

    return LocalBackend(App.open(settings))

"""What every turn shares, headless or in a TUI: its inputs and its end.

A turn's inputs are the session's folder, the environment given with ``pa new --env``
and the adapter's ``TurnContext``; its end is a checkpoint of the worktree, then (when
configured) the repository's check. The headless supervisor (sessions.headless) and the
TUI runner (sessions.tui) both work through a ``Turns``; the supervisor is one, so the
server's override of ``after_turn`` (deferred checkpoints) covers both kinds of session.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from parallel_agents.agents.base import TurnContext
from parallel_agents.config import Settings, load_repo_config
from parallel_agents.errors import PAError
from parallel_agents.models import Session, Status
from parallel_agents.sessions import ports
from parallel_agents.store import Store


class Turns:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._checks: list[str] = []
        self._checks_lock = threading.Lock()

    # -- inputs ---------------------------------------------------------------------
    def session_dir(self, sid: str) -> Path:
        return self.store.home / "sessions" / sid

    def session_env(self, sid: str) -> dict[str, str]:
        """Extra environment given with `pa new --env` (kept in a 0600 file, never in events)."""
        p = self.session_dir(sid) / "env.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise PAError(f"cannot read the session's environment file {p}: {e}") from e
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def write_session_env(self, sid: str, env: dict[str, str]) -> None:
        d = self.session_dir(sid)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(d / "env.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(env, f)

    def context(self, s: Session, n: int, prompt: str) -> TurnContext:
        repo = self.store.repo(s.repo_id)
        return TurnContext(
            prompt=prompt,
            worktree=Path(s.worktree),
            session_dir=self.session_dir(s.id),
            turn=n,
            model=s.model,
            agent_session_id=s.agent_session_id,
            cmd=s.cmd,
            settings=self.settings.agent_settings(s.agent),
            env={
                **load_repo_config(Path(repo.path)).env,
                **ports.env_for(self.store, s.id),  # issue 16 §1: PA_PORT, PA_PORTS, PORT
                **self.session_env(s.id),
            },
            session_id=s.id,
        )

    # -- the end --------------------------------------------------------------------
    def after_turn(self, sid: str, n: int | None = None) -> None:
        """Checkpoint the worktree at the end of turn ``n`` (default: the last turn);
        optionally run the repo's check. A deferred checkpoint passes ``n``: by the time
        it runs, a follow-up may already have added the next turn."""
        from parallel_agents.sessions import review as review_service

        s = self.store.session(sid)
        if n is None:
            turn = self.store.last_turn(sid)
            if turn is None:
                return
            n = turn.n
        try:
            review_service.checkpoint_turn(self.store, s, n)
        except Exception as e:  # a failed snapshot must not wedge the session
            self.store.add_event(sid, "error", {"message": f"checkpoint failed: {e}"})
            return
        if s.options.get("group"):  # a map or reduce task: collect its outcome (issue 15 §4)
            from parallel_agents.sessions import map_report

            try:
                map_report.turn_ended(self.store, s)
            except Exception as e:  # the report's sync collects it later
                self.store.add_event(sid, "error", {"message": f"outcome not collected: {e}"})
        if self.settings.get("check.after_turn") and s.status == Status.IDLE:
            with self._checks_lock:
                self._checks.append(sid)

    def run_pending_checks(self) -> None:
        """Run after-turn checks queued by ``after_turn`` (in parallel, within the limit)."""
        from concurrent.futures import ThreadPoolExecutor

        from parallel_agents.sessions import review as review_service

        with self._checks_lock:
            todo, self._checks = self._checks, []
        if not todo:
            return

        def one(sid: str) -> None:
            st = Store(self.store.home)  # sqlite connections are per thread
            try:
                review_service.run_check(st, self.settings, st.session(sid))
            except PAError as e:
                st.add_event(sid, "error", {"message": f"check: {e.message}"})
            finally:
                st.close()

        limit = int(self.settings.get("check.parallel") or 2)
        with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:
            list(pool.map(one, todo))

"""The agent interface: how to start a CLI, resume it, and read what it prints.

An adapter is stateless; everything it learns while parsing one turn lives in a
``TurnState`` (a JSON-able dict) that the supervisor stores next to its read offset,
so parsing resumes exactly where it stopped after a server crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from parallel_agents.errors import PAError
from parallel_agents.models import EventKind

# Parsers must never choke on a huge line: keep at most this much raw text per event.
MAX_RAW = 64 * 1024
TAIL = 2000


@dataclass
class NormEvent:
    """One normalised thing the agent did. ``raw`` is filled by the supervisor."""

    kind: EventKind
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnContext:
    """Everything an adapter needs to build the command line of one turn."""

    prompt: str
    worktree: Path
    session_dir: Path  # private folder of the session: config dirs, trajectories
    turn: int  # 1 for the first prompt
    model: str | None = None
    agent_session_id: str | None = None  # the CLI's own id, set for follow-ups
    cmd: list[str] | None = None  # the `command` agent's program
    settings: Mapping[str, Any] = field(default_factory=dict)  # [agents.<name>] from config
    env: Mapping[str, str] = field(default_factory=dict)  # repo env from .parallel-agents.toml
    session_id: str = ""

    @property
    def resume(self) -> bool:
        return self.turn > 1 and bool(self.agent_session_id)


@dataclass
class Launch:
    """How to start one turn: argv (never a shell string), extra env, stdin bytes."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None  # None: stdin is /dev/null (closed)
    cwd: Path | None = None  # default: the worktree


@dataclass
class TurnEnd:
    ok: bool
    error: str | None = None
    result: str | None = None
    reason: str | None = None  # e.g. "max_turns", "timeout", "signal"


TurnState = dict[str, Any]


class MissingBinary(PAError):
    pass


class AgentVersionError(PAError):
    pass


class Agent:
    """Base class of every adapter; subclasses override what differs."""

    name: str = ""
    binary: str | None = None
    install_hint: str = ""
    supports_resume: bool = False
    # Flags that must appear in `<binary> --help`; checked once per binary path.
    required_flags: tuple[str, ...] = ()
    help_args: tuple[str, ...] = ("--help",)
    # Strings that, seen in an interactive pane, mean the agent waits for the person.
    waiting_patterns: tuple[str, ...] = ()
    idle_patterns: tuple[str, ...] = ()

    # The line that closes a successful headless turn in this CLI's protocol (e.g.
    # Claude's ``result``); a turn that exits 0 without it did not finish. None: the
    # protocol has no such record and the exit code decides.
    result_record: str | None = None
    # The CLI releases pa is tested with, oldest and newest (for messages and the README).
    supported_versions: tuple[str, str] | None = None

    _checked: ClassVar[dict[str, str]] = {}

    # -- starting -----------------------------------------------------------------
    def resolve_binary(self, settings: Mapping[str, Any]) -> str:
        """Absolute path of the CLI, honouring ``[agents.<name>] binary`` in settings."""
        name = str(settings.get("binary") or self.binary or "")
        if not name:
            raise MissingBinary(f"agent {self.name!r} has no binary configured")
        found = shutil.which(name)
        if not found:
            raise MissingBinary(
                f"agent {self.name!r} needs the {name!r} program, which is not on PATH",
                hint=self.install_hint or None,
            )
        return found

    def check_version(self, binary: str) -> None:
        """Fail clearly when the installed CLI lacks a flag we rely on.

        The answer is cached on disk (under PA_HOME) per binary, keyed by its real path,
        size and mtime, so `--help` runs once per installed version, not once per turn.
        The probe runs with a throw-away HOME: some CLIs write state even for `--help`.
        """
        if not self.required_flags:
            return
        real = os.path.realpath(binary)
        try:
            st = os.stat(real)
        except OSError as e:
            raise MissingBinary(f"cannot run {binary}: {e.strerror}") from e
        key = f"{self.name}:{real}:{st.st_size}:{int(st.st_mtime)}:{','.join(self.required_flags)}"
        if Agent._checked.get(key) == "ok" or key in _disk_cache():
            Agent._checked[key] = "ok"
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pa-help-") as tmp:
            env = {
                **os.environ,
                "NO_COLOR": "1",
                "HOME": tmp,
                "XDG_CONFIG_HOME": os.path.join(tmp, ".config"),
                "XDG_DATA_HOME": os.path.join(tmp, ".local", "share"),
                "XDG_CACHE_HOME": os.path.join(tmp, ".cache"),
                "XDG_STATE_HOME": os.path.join(tmp, ".local", "state"),
            }
            try:
                proc = subprocess.run(
                    [binary, *self.help_args],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                    env=env,
                    cwd=tmp,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                raise AgentVersionError(f"could not run {binary} --help: {e}") from e
        text = proc.stdout + proc.stderr
        missing = [f for f in self.required_flags if f not in text]
        if missing:
            raise AgentVersionError(
                f"the installed {self.name} ({binary}) does not support "
                f"{', '.join(missing)}; pa needs a version that does",
                hint=self.install_hint or None,
            )
        Agent._checked[key] = "ok"
        _remember_checked(key)

    def build(self, ctx: TurnContext) -> Launch:
        raise NotImplementedError

    def build_interactive(self, ctx: TurnContext) -> Launch:
        raise PAError(f"agent {self.name!r} has no interactive mode")

    # -- reading ------------------------------------------------------------------
    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        """Events for one stdout line. Must never raise; unknown input -> ``raw``."""
        return [NormEvent(EventKind.RAW, {"text": line[:MAX_RAW]})]

    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        """Events only available once the process ended (e.g. a trajectory file)."""
        return []

    def finish(self, exit_code: int | None, stderr_tail: str, state: TurnState) -> TurnEnd:
        """Decide how the turn ended, from what was parsed and the exit code."""
        end = state.get("end")
        if isinstance(end, dict):
            return TurnEnd(
                ok=bool(end.get("ok")) and exit_code in (0, None),
                error=end.get("error")
                or (None if exit_code in (0, None) else _exit_text(exit_code, stderr_tail)),
                result=end.get("result"),
                reason=end.get("reason"),
            )
        if exit_code == 0 and self.result_record:
            return self.no_result(stderr_tail, state)
        if exit_code == 0:
            return TurnEnd(ok=True, result=state.get("result"))
        return TurnEnd(ok=False, error=_exit_text(exit_code, stderr_tail))

    def no_result(self, stderr_tail: str, state: TurnState) -> TurnEnd:
        """The turn exited 0 but never printed its ``result_record``: not a success (an
        unsupported CLI release, input it did not read, a crash that still exited 0)."""
        said = stderr_tail.strip()[-TAIL:]
        last = state.get("last_text")
        if said:
            detail = f"its stderr ends with:\n{said}"
        elif isinstance(last, str) and last.strip():
            detail = f"its last message was:\n{last.strip()[-TAIL:]}"
        else:
            detail = "it printed nothing on stderr"
        binary = self.binary or self.name
        if self.supported_versions:
            lo, hi = self.supported_versions
            check = f"run `{binary} --version`: pa supports {self.name} {lo} to {hi}"
        else:
            check = f"run `{binary} --version` and check it works on its own"
        return TurnEnd(
            ok=False,
            error=(
                f"{self.name} exited with code 0 without its final "
                f"{self.result_record!r} record, so the turn did not finish; {detail}\n"
                f"hint: {check}; then retry with `pa send`"
            ),
            reason="no_result",
        )

    def agent_session_id(self, state: TurnState) -> str | None:
        v = state.get("agent_session_id")
        return str(v) if v else None


def _cache_file() -> Path:
    from parallel_agents.config import pa_home

    return pa_home() / "agent-versions.json"


def _disk_cache() -> set[str]:
    import json

    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {str(k) for k in data} if isinstance(data, list) else set()


def _remember_checked(key: str) -> None:
    import json

    path = _cache_file()
    keys = sorted(_disk_cache() | {key})[-200:]
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(keys), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache only: the probe simply runs again next time


def _exit_text(exit_code: int | None, stderr_tail: str) -> str:
    tail = stderr_tail.strip()[-TAIL:]
    if exit_code is None:
        return tail or "the agent ended without an exit code"
    if exit_code < 0 or exit_code > 128:
        import signal

        num = -exit_code if exit_code < 0 else exit_code - 128
        try:
            sig = signal.Signals(num).name
        except ValueError:
            sig = f"signal {num}"
        head = f"killed by {sig}"
    else:
        head = f"exit code {exit_code}"
    return f"{head}: {tail}" if tail else head


def record_usage(
    state: TurnState,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_tokens: int = 0,
    cost_usd: float | None = None,
    cumulative: bool = False,
) -> NormEvent:
    """Store this turn's usage in ``state`` and return a ``usage`` event.

    CLIs that report running totals over a resumed conversation pass
    ``cumulative=True``; the per-turn delta is computed against ``state['usage_base']``
    (the totals seen at the end of the previous turn, seeded by the supervisor).
    """
    vals: dict[str, float] = {
        "input_tokens": float(input_tokens),
        "output_tokens": float(output_tokens),
        "cached_tokens": float(cached_tokens),
    }
    if cost_usd is not None:
        vals["cost_usd"] = float(cost_usd)
    if cumulative:
        base = state.get("usage_base") or {}
        state["usage_total"] = dict(vals)
        vals = {k: max(0.0, v - float(base.get(k, 0) or 0)) for k, v in vals.items()}
    usage: dict[str, Any] = {
        "input_tokens": int(vals["input_tokens"]),
        "output_tokens": int(vals["output_tokens"]),
        "cached_tokens": int(vals["cached_tokens"]),
        "cost_usd": vals.get("cost_usd"),
    }
    state["usage"] = usage
    return NormEvent(EventKind.USAGE, dict(usage))


def ensure_dir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p

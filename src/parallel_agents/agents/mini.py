"""mini-swe-agent (`mini`): one run per turn, structured results from its trajectory file.

From mini-swe-agent 2.4.6 (docs/agent-protocols.md §8 and ``minisweagent/run/mini.py``):

- ``mini --task=<task> --yolo --exit-immediately -o <session>/turn-<n>.traj.json``; the
  task uses the equals form so a task starting with ``-`` stays a task.
- Without ``MSWEA_CONFIGURED`` mini starts a setup wizard that reads the terminal; with
  stdin closed that crashes, so pa sets it (unless the user did). ``MSWEA_SILENT_STARTUP``
  hides the banner. The user's own ``MSWEA_*`` settings and keys pass through.
- stdout is Rich-formatted text for people: lines become ``raw`` events (step headers a
  ``status``). The trajectory (saved after every step, so also after a crash) is the
  source of messages, commands, return codes, the exit status and ``instance_cost``.
- mini has no resume: a follow-up is a new run whose task carries a summary of the
  previous trajectories and then the new instruction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    MAX_RAW,
    TAIL,
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnState,
    ensure_dir,
    record_usage,
)
from parallel_agents.models import EventKind

_STEP = re.compile(r"mini-swe-agent \(step (\d+), \$(\d+(?:\.\d+)?)\):")
_SUBMIT = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
_EXIT_REASONS = {
    "LimitsExceeded": "limits_exceeded",
    "TimeExceeded": "timeout",
    "RepeatedFormatError": "format_errors",
}
SUMMARY_LIMIT = 20_000


def trajectory_path(session_dir: Path, turn: int) -> Path:
    return session_dir / f"turn-{turn}.traj.json"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _messages(traj: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = traj.get("messages")
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def _extra(msg: dict[str, Any]) -> dict[str, Any]:
    e = msg.get("extra")
    return e if isinstance(e, dict) else {}


def _actions(msg: dict[str, Any]) -> list[dict[str, Any]]:
    acts = _extra(msg).get("actions")
    return [a for a in acts if isinstance(a, dict)] if isinstance(acts, list) else []


def summarize(traj: dict[str, Any], task: str = "") -> str:
    """A short account of one earlier run, to put in front of the next task."""
    info = traj.get("info") if isinstance(traj.get("info"), dict) else {}
    info = info or {}
    lines: list[str] = []
    if task:
        lines.append(f"Task: {task.strip()}")
    for m in _messages(traj):
        if m.get("role") == "assistant":
            text = c.s(m.get("content")).strip()
            if text:
                lines.append(f"Assistant: {c.clip(text, 500)}")
            for a in _actions(m):
                lines.append(f"$ {c.clip(c.s(a.get('command')), 300)}")
        elif "returncode" in _extra(m):
            ex = _extra(m)
            lines.append(f"(exit {ex.get('returncode')}) {c.tail(c.s(ex.get('raw_output')), 300)}")
    status = c.s(info.get("exit_status"))
    if status:
        lines.append(f"Exit status: {status}")
    sub = c.s(info.get("submission")).strip()
    if sub:
        lines.append(f"Submission: {c.clip(sub, 1000)}")
    return "\n".join(lines)


class MiniAgent(Agent):
    name = "mini"
    binary = "mini"
    install_hint = "pipx install mini-swe-agent==2.4.6"
    supports_resume = False
    required_flags = ("--task", "--yolo", "--exit-immediately", "--output")

    def task_text(self, ctx: TurnContext) -> str:
        """The task for this turn: the prompt, after a summary of earlier turns if any."""
        if ctx.turn <= 1:
            return ctx.prompt
        parts: list[str] = []
        for n in range(1, ctx.turn):
            traj = _load(trajectory_path(ctx.session_dir, n))
            if traj is None:
                continue
            prompt_file = ctx.session_dir / f"turn-{n}.task.txt"
            task = ""
            if prompt_file.exists():
                task = prompt_file.read_text(encoding="utf-8", errors="replace")
                task = task.rsplit("\n\nNew instruction:\n", 1)[-1]
            parts.append(f"## Earlier run {n}\n{summarize(traj, task)}")
        if not parts:
            return ctx.prompt
        history = "\n\n".join(parts)
        if len(history) > SUMMARY_LIMIT:
            history = "…" + history[-SUMMARY_LIMIT:]
        return (
            "You are continuing work in this repository. mini-swe-agent cannot resume a "
            "conversation, so here is what earlier runs did (the files already reflect it):\n\n"
            f"{history}\n\nNew instruction:\n{ctx.prompt}"
        )

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        ensure_dir(ctx.session_dir)
        task = self.task_text(ctx)
        (ctx.session_dir / f"turn-{ctx.turn}.task.txt").write_text(task, encoding="utf-8")
        traj = trajectory_path(ctx.session_dir, ctx.turn)
        argv = [binary, f"--task={task}", "--yolo", "--exit-immediately", "-o", str(traj)]
        model = ctx.model or s.get("model")
        if model:
            argv += ["--model", str(model)]
        if s.get("model_class"):
            argv += ["--model-class", str(s["model_class"])]
        if s.get("cost_limit") is not None:
            argv += ["--cost-limit", str(s["cost_limit"])]
        for spec in c.setting_list(s, "config"):
            argv += ["-c", spec]
        argv += c.extra_args(s)
        env = c.env_defaults(ctx, {"MSWEA_CONFIGURED": "true", "MSWEA_SILENT_STARTUP": "1"})
        return Launch(argv=argv, env=env)

    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        try:
            m = _STEP.search(line)
            if m:
                return [
                    NormEvent(
                        EventKind.STATUS,
                        {"state": "running", "step": int(m[1]), "cost_usd": float(m[2])},
                    )
                ]
            return [c.raw(line)] if line.strip() else []
        except Exception:
            return [c.raw(line)]

    # -- after the process ended: the trajectory ---------------------------------------
    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        traj = _load(trajectory_path(ctx.session_dir, ctx.turn))
        if traj is None:
            return []
        try:
            return self.trajectory_events(traj, state)
        except Exception as e:  # a malformed file must not wedge the session
            return [NormEvent(EventKind.ERROR, {"message": f"unreadable trajectory: {e!r}"})]

    def trajectory_events(self, traj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        out: list[NormEvent] = []
        info = traj.get("info") if isinstance(traj.get("info"), dict) else {}
        info = info or {}
        status = c.s(info.get("exit_status"))
        submission = c.s(info.get("submission"))
        pending: dict[str, dict[str, Any]] = {}  # tool_call_id -> action, for observations
        order: list[dict[str, Any]] = []  # actions without ids, in order (text-based mode)
        last_text = ""
        tokens = {"input_tokens": 0.0, "output_tokens": 0.0, "cached_tokens": 0.0}
        for m in _messages(traj):
            role = m.get("role") or m.get("type")
            ex = _extra(m)
            if role == "assistant":
                text = c.s(m.get("content"))
                if text.strip():
                    last_text = text
                    out.append(NormEvent(EventKind.MESSAGE, {"text": c.clip(text, MAX_RAW)}))
                self._count_tokens(ex, tokens)
                for a in _actions(m):
                    tid = c.s(a.get("tool_call_id"))
                    cmd = c.s(a.get("command"))
                    out.append(
                        NormEvent(
                            EventKind.TOOL_CALL,
                            {"name": "bash", "input": {"command": c.cap(cmd)}, "id": tid},
                        )
                    )
                    if tid:
                        pending[tid] = a
                    else:
                        order.append(a)
            elif role == "exit":
                continue
            elif "returncode" in ex:
                tid = c.s(m.get("tool_call_id") or m.get("call_id"))
                action = pending.pop(tid, None) if tid else (order.pop(0) if order else None)
                cmd = c.s(action.get("command")) if action else ""
                code = ex.get("returncode")
                output = c.s(ex.get("raw_output"))
                if ex.get("exception_info") == "action was not executed" and _SUBMIT in cmd:
                    code, output = (0, submission) if status == "Submitted" else (None, "")
                elif ex.get("exception_info"):
                    output = f"{output}\n{c.s(ex.get('exception_info'))}".strip()
                out.append(
                    NormEvent(
                        EventKind.COMMAND,
                        {
                            "command": c.clip(cmd, TAIL),
                            "exit_code": code if isinstance(code, int) else None,
                            "output": c.tail(output),
                            "id": tid or None,
                        },
                    )
                )
        for a in [*pending.values(), *order]:  # submitted: the run ended inside the action
            cmd = c.s(a.get("command"))
            if _SUBMIT in cmd and status == "Submitted":
                out.append(
                    NormEvent(
                        EventKind.COMMAND,
                        {
                            "command": c.clip(cmd, TAIL),
                            "exit_code": 0,
                            "output": c.tail(submission),
                            "id": c.s(a.get("tool_call_id")) or None,
                        },
                    )
                )
        stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
        cost = (stats or {}).get("instance_cost")
        out.append(
            record_usage(
                state,
                input_tokens=int(tokens["input_tokens"]),
                output_tokens=int(tokens["output_tokens"]),
                cached_tokens=int(tokens["cached_tokens"]),
                cost_usd=c.num(cost) if cost is not None else None,
            )
        )
        result = last_text.strip() or submission.strip() or None
        if status == "Submitted":
            c.set_end(state, ok=True, result=c.clip(result) if result else None)
        elif status:
            exit_msg = ""
            for m in reversed(_messages(traj)):
                if m.get("role") == "exit":
                    exit_msg = c.s(m.get("content"))
                    break
            error = f"mini stopped: {status}"
            if exit_msg and exit_msg != status:
                error += f": {c.tail(exit_msg, TAIL)}"
            c.set_end(state, ok=False, error=error, reason=_EXIT_REASONS.get(status, status))
        return out

    @staticmethod
    def _count_tokens(extra: dict[str, Any], acc: dict[str, float]) -> None:
        resp = extra.get("response")
        usage = resp.get("usage") if isinstance(resp, dict) else None
        if not isinstance(usage, dict):
            return
        acc["input_tokens"] += c.num(usage.get("prompt_tokens", usage.get("input_tokens")))
        acc["output_tokens"] += c.num(usage.get("completion_tokens", usage.get("output_tokens")))
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
        if isinstance(details, dict):
            acc["cached_tokens"] += c.num(details.get("cached_tokens"))

"""Aider (`aider`): one ``--message-file`` per turn, text output parsed line by line.

From Aider's source (0.86.x, docs/agent-protocols.md §4; not run here):

- ``--message``/``--message-file`` sends one message and exits; the prompt goes through a
  file in the session folder (no argv length limit, nothing parsed as a flag).
- ``--yes-always`` answers confirmations (shell commands suggested by the model still get
  "no"); ``--no-auto-commits --no-dirty-commits`` unless ``auto_commits = true``: pa takes
  its own checkpoints. ``--no-gitignore`` keeps Aider from editing the repo's .gitignore.
- Lines understood: ``Applied edit to <path>``, ``Commit <hash> <message>``,
  ``Tokens: 2.1k sent, 120 received.`` and ``Cost: $0.01 message, $0.03 session.`` (one
  line, or two when cache numbers are shown). The session cost is cumulative within one
  aider process; every turn is a new process, so the last session cost is the turn's cost.
- No session id: the chat history file in the session folder is the conversation, and a
  follow-up restores it with ``--restore-chat-history``.
- Aider exits 0 even when the model API fails; an error line with no model reply after it
  fails the turn.
"""

from __future__ import annotations

import re

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    TAIL,
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnEnd,
    TurnState,
    ensure_dir,
    record_usage,
)
from parallel_agents.models import EventKind

_APPLIED = re.compile(r"^Applied edit to (?P<path>.+?)\s*$")
_CREATED = re.compile(r"^Creating empty file (?P<path>.+?)\s*$")
_COMMIT = re.compile(r"^Commit (?P<hash>[0-9a-f]{7,40}) (?P<msg>.*)$")
_N = r"(\d+(?:\.\d+)?[kKmM]?)"
_TOKENS = re.compile(
    rf"Tokens: {_N} sent(?:, {_N} cache write)?(?:, {_N} cache hit)?, {_N} received\."
)
_COST = re.compile(r"Cost: \$(\d+(?:\.\d+)?) message, \$(\d+(?:\.\d+)?) session\.")
_ERROR = re.compile(
    r"^(?:litellm\.\w+|\w+(?:Error|Exception))\b.*"
    r"|^The API provider (?:is not able to authenticate you|has rate limited you|"
    r"is not able to|could not).*"
)


def _tokens(v: str | None) -> int:
    if not v:
        return 0
    mult = {"k": 1_000, "m": 1_000_000}.get(v[-1].lower(), 1)
    return int(float(v.rstrip("kKmM")) * mult)


class AiderAgent(Agent):
    name = "aider"
    binary = "aider"
    install_hint = "pipx install aider-chat"
    supports_resume = True
    required_flags = ("--message-file", "--yes-always", "--no-auto-commits")
    waiting_patterns = ("(Y)es/(N)o",)

    def history_file(self, ctx: TurnContext) -> str:
        return str(ctx.session_dir / "aider.chat.history.md")

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        ensure_dir(ctx.session_dir)
        prompt_file = ctx.session_dir / f"turn-{ctx.turn}.prompt.md"
        prompt_file.write_text(ctx.prompt, encoding="utf-8")
        history = self.history_file(ctx)
        argv = [binary, "--message-file", str(prompt_file), "--yes-always"]
        if not c.setting_bool(s, "auto_commits", False):
            argv += ["--no-auto-commits", "--no-dirty-commits"]
        argv += [
            "--no-pretty",
            "--no-stream",
            "--no-check-update",
            "--analytics-disable",
            "--no-gitignore",
            "--chat-history-file",
            history,
            "--input-history-file",
            str(ctx.session_dir / "aider.input.history"),
        ]
        model = ctx.model or s.get("model")
        if model:
            argv += ["--model", str(model)]
        if ctx.turn > 1 and (ctx.resume or (ctx.session_dir / "aider.chat.history.md").exists()):
            argv.append("--restore-chat-history")
        argv += c.extra_args(s)
        return Launch(argv=argv)

    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        try:
            return self._parse(line, state)
        except Exception:
            return [c.raw(line)]

    def _parse(self, line: str, state: TurnState) -> list[NormEvent]:
        text = line.rstrip()
        if _ERROR.match(text):
            # Held back: Aider retries, and the last one is reported once as the turn's error.
            state["error_text"] = c.clip(text, TAIL * 2)
            c.defer_error(state, state["error_text"])
            return []
        out = c.flush_errors(state)
        if m := _APPLIED.match(text):
            return [*out, NormEvent(EventKind.FILE_CHANGE, {"path": m["path"], "kind": "modify"})]
        if m := _CREATED.match(text):
            return [*out, NormEvent(EventKind.FILE_CHANGE, {"path": m["path"], "kind": "add"})]
        if m := _COMMIT.match(text):
            return [
                *out,
                NormEvent(
                    EventKind.STATUS,
                    {"state": "running", "commit": m["hash"], "message": c.clip(m["msg"], TAIL)},
                ),
            ]
        tok = _TOKENS.search(text)
        cost = _COST.search(text)
        if tok or cost:
            if tok:
                state["replies"] = int(c.num(state.get("replies"))) + 1
                state["error_text"] = None  # a reply came after any earlier error
                acc = state.get("aider_usage")
                acc = acc if isinstance(acc, dict) else {}
                acc["input_tokens"] = c.num(acc.get("input_tokens")) + _tokens(tok[1])
                acc["cached_tokens"] = c.num(acc.get("cached_tokens")) + _tokens(tok[3])
                acc["output_tokens"] = c.num(acc.get("output_tokens")) + _tokens(tok[4])
                state["aider_usage"] = acc
            if cost:
                acc = state.get("aider_usage")
                acc = acc if isinstance(acc, dict) else {}
                acc["cost_usd"] = float(cost[2])  # cumulative within this aider process
                state["aider_usage"] = acc
            return [*out, self._record(state)]
        if text.strip():
            lines = state.get("tail_lines")
            lines = lines if isinstance(lines, list) else []
            lines = [*lines, c.clip(text, TAIL)][-40:]
            state["tail_lines"] = lines
            out.append(c.raw(line))
        return out

    @staticmethod
    def _record(state: TurnState) -> NormEvent:
        acc = state.get("aider_usage")
        acc = acc if isinstance(acc, dict) else {}
        cost = acc.get("cost_usd")
        return record_usage(
            state,
            input_tokens=int(c.num(acc.get("input_tokens"))),
            output_tokens=int(c.num(acc.get("output_tokens"))),
            cached_tokens=int(c.num(acc.get("cached_tokens"))),
            cost_usd=c.num(cost) if cost is not None else None,
        )

    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        state["agent_session_id"] = self.history_file(ctx)
        err = state.get("error_text")
        return c.flush_errors(state, drop=err if isinstance(err, str) else None)

    def finish(self, exit_code: int | None, stderr_tail: str, state: TurnState) -> TurnEnd:
        err = state.get("error_text")
        if exit_code == 0 and isinstance(err, str) and err:
            return TurnEnd(ok=False, error=err, reason="api_error")
        lines = state.get("tail_lines")
        if exit_code == 0 and isinstance(lines, list) and lines:
            state["result"] = c.tail("\n".join(c.s(x) for x in lines[-20:]))
        return super().finish(exit_code, stderr_tail, state)

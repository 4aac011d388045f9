"""The `command` agent: any program, prompt on stdin and in PA_PROMPT, one event per line."""

from __future__ import annotations

import shutil

from ..errors import UsageError
from ..models import EventKind
from .base import MAX_RAW, Agent, Launch, MissingBinary, NormEvent, TurnContext, TurnState


class CommandAgent(Agent):
    name = "command"
    supports_resume = False

    def build(self, ctx: TurnContext) -> Launch:
        if not ctx.cmd:
            raise UsageError("the command agent needs --cmd 'PROGRAM ARGS…'")
        prog = ctx.cmd[0]
        if "/" in prog:
            from pathlib import Path

            p = Path(prog) if Path(prog).is_absolute() else ctx.worktree / prog
            if not p.exists():
                raise MissingBinary(f"--cmd program {prog!r} does not exist")
        elif shutil.which(prog) is None:
            raise MissingBinary(
                f"--cmd program {prog!r} was not found on PATH",
                hint="give an absolute path or install it",
            )
        return Launch(
            argv=list(ctx.cmd),
            env={"PA_PROMPT": ctx.prompt, "PA_TURN": str(ctx.turn)},
            stdin=ctx.prompt.encode("utf-8"),
        )

    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        state["result"] = line[:MAX_RAW]
        return [NormEvent(EventKind.OUTPUT, {"text": line[:MAX_RAW]})]

"""The `command` agent: any program, prompt on stdin and in PA_PROMPT, one event per line.

Linux limits one environment string to 128 KiB (MAX_ARG_STRLEN): a longer prompt is not
put in PA_PROMPT (the process could not start); PA_PROMPT_FILE names a file holding it.
"""

from __future__ import annotations

import shutil

from parallel_agents.agents.base import (
    MAX_RAW,
    Agent,
    Launch,
    MissingBinary,
    NormEvent,
    TurnContext,
    TurnState,
)
from parallel_agents.errors import UsageError
from parallel_agents.models import EventKind

# Linux's MAX_ARG_STRLEN (32 pages): the longest single "NAME=value" string, NUL included.
MAX_ENV_STRING = 32 * 4096


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
        data = ctx.prompt.encode("utf-8")
        env = {"PA_TURN": str(ctx.turn)}
        if len(data) + len("PA_PROMPT=") < MAX_ENV_STRING:
            env["PA_PROMPT"] = ctx.prompt
        else:
            ctx.session_dir.mkdir(parents=True, exist_ok=True)
            prompt_file = ctx.session_dir / f"prompt-{ctx.turn}.txt"
            prompt_file.write_bytes(data)
            env["PA_PROMPT_FILE"] = str(prompt_file)
        return Launch(argv=list(ctx.cmd), env=env, stdin=data)

    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        state["result"] = line[:MAX_RAW]
        return [NormEvent(EventKind.OUTPUT, {"text": line[:MAX_RAW]})]

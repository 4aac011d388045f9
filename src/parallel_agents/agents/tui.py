"""An agent's TUI as pa runs it: the command that launches it, and what its screen says.

Status of an interactive session comes from structured signals first (Claude Code hooks,
Codex ``notify``; ``STRUCTURED`` says which), and from the text of its tmux pane only as a
fallback (``classify_pane``).

The pane strings are those of the captured screens in docs/agent-protocols.md §1.8,
§2.6 and §9 (Claude Code 2.1.332, Codex 0.171.0, Gemini 0.61.0); they drift between
releases, which is why the hooks come first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parallel_agents.agents.base import Agent, Launch, TurnContext
from parallel_agents.agents.claude_hooks import ensure_claude_hooks
from parallel_agents.errors import PAError
from parallel_agents.models import Signal

# Which signals an agent delivers in a structured way when launched by pa. For those, the
# pane is consulted only when it disagrees for a while and no structured signal came since.
STRUCTURED: dict[str, frozenset[Signal]] = {
    "claude": frozenset({Signal.RUNNING, Signal.NEEDS_INPUT, Signal.IDLE}),
    "codex": frozenset({Signal.IDLE}),
}


# -- launching ---------------------------------------------------------------------------
def build_launch(agent: Agent, ctx: TurnContext) -> Launch:
    """The command that runs ``agent``'s TUI for ``ctx`` (prompt as argv, never a shell)."""
    if agent.name == "command":
        if not ctx.cmd:
            raise PAError("the command agent needs --cmd 'PROGRAM ARGS…'")
        return Launch(
            argv=list(ctx.cmd),
            env={"PA_PROMPT": ctx.prompt, "PA_TURN": str(ctx.turn), "PA_INTERACTIVE": "1"},
        )
    launch = agent.build_interactive(ctx)
    if not launch.argv:
        raise PAError(f"agent {agent.name!r} gave no command line for its interactive mode")
    if agent.name == "claude":
        ensure_claude_hooks(launch.argv, ctx)
    return launch


# -- the pane ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PanePatterns:
    waiting: tuple[re.Pattern[str], ...]  # a dialog waits for the person
    busy: tuple[re.Pattern[str], ...]  # the agent works
    idle: tuple[re.Pattern[str], ...]  # the prompt box waits for the next prompt


def _re(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


TRUST = _re(
    r"Quick safety check: Is this a project",  # claude 2.1.332 (default: "No, exit")
    r"Do you trust the files in this folder\?",  # older claude
    r"Trust this folder\? Codex",  # codex 0.171.0
    r"Detected a custom API key in your environment",  # claude (default: "No")
)
PANE: dict[str, PanePatterns] = {
    "claude": PanePatterns(
        waiting=_re(
            r"Do you want to (?:proceed|create|make this edit|overwrite|allow)",
            r"❯ 1\. Yes",
            r"^\s*Esc to cancel · Tab to amend",
        )
        + TRUST,
        busy=_re(r"esc to interrupt"),
        idle=_re(r"\? for shortcuts"),
    ),
    "codex": PanePatterns(
        waiting=_re(
            r"Would you like to (?:run the following command|make the following edits)\?",
            r"Press enter to confirm or esc to cancel",
            r"Yes, proceed \(y\)",
        )
        + TRUST,
        busy=_re(r"esc to interrupt"),
        idle=_re(r"\? for shortcuts"),
    ),
    "gemini": PanePatterns(
        waiting=_re(r"Allow once", r"No, suggest changes \(esc\)", r"Apply this change\?"),
        busy=_re(r"esc to cancel"),
        idle=_re(r"Type your message"),
    ),
    "aider": PanePatterns(
        waiting=_re(r"\(Y\)es/\(N\)o"),
        busy=_re(),
        idle=_re(),
    ),
}
# Any other program (the `command` agent, plugins): every known waiting string.
GENERIC = PanePatterns(
    waiting=tuple(dict.fromkeys(p for pp in PANE.values() for p in pp.waiting)),
    busy=_re(r"esc to interrupt"),
    idle=_re(r"\? for shortcuts"),
)
# Waiting dialogs are drawn at the bottom; old text higher up must not count.
WAITING_LINES = 25


def patterns_for(agent: Agent | None) -> PanePatterns:
    if agent is None:
        return GENERIC
    base = PANE.get(agent.name, GENERIC)
    extra_wait = tuple(re.compile(re.escape(s)) for s in agent.waiting_patterns)
    extra_idle = tuple(re.compile(re.escape(s)) for s in agent.idle_patterns)
    if not extra_wait and not extra_idle:
        return base
    return PanePatterns(base.waiting + extra_wait, base.busy, base.idle + extra_idle)


def classify_pane(text: str, patterns: PanePatterns) -> Signal | None:
    """What the visible screen says: waiting beats busy beats idle; None if unclear."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip()]
    bottom = "\n".join(lines[-WAITING_LINES:])
    if any(p.search(bottom) for p in _multiline(patterns.waiting)):
        return Signal.NEEDS_INPUT
    whole = "\n".join(lines)
    if any(p.search(whole) for p in patterns.busy):
        return Signal.RUNNING
    if any(p.search(bottom) for p in patterns.idle):
        return Signal.IDLE
    return None


def _multiline(patterns: tuple[re.Pattern[str], ...]) -> list[re.Pattern[str]]:
    return [re.compile(p.pattern, p.flags | re.MULTILINE) for p in patterns]

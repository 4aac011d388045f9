"""`pa review`: a reviewer agent's line comments on a session's diff (issue 15 §3)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import emit_json, printable, table, text_cell

_WORKING = ("queued", "starting", "running")
DEFAULT_TIMEOUT = 600.0  # sessions/reviewer.py's; not imported: `pa` starts light


def _ids(text: str) -> list[int]:
    from parallel_agents.errors import UsageError

    try:
        ids = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise UsageError(f"--only {text!r} is not a list of comment ids like 3,5") from None
    if not ids:
        raise UsageError("--only names no comment", hint="e.g. --only 3,5 (see --list)")
    return ids


def _first_line(text: str, n: int = 100) -> str:
    line = printable(text.strip().split("\n", 1)[0])
    return line if len(line) <= n else line[: n - 1] + "…"


def _print_comments(comments: list[dict[str, Any]]) -> None:
    rows = [
        [
            str(c["id"]),
            text_cell(f"{c['path']}:{c['line']}" + (" (old)" if c["side"] == "old" else "")),
            f"turn {c['sent_turn']}" if c.get("sent_at") else "-",
            text_cell(_first_line(c["body"])),
        ]
        for c in comments
    ]
    table(["ID", "WHERE", "SENT", "COMMENT"], rows)


def _wait(cl: Any, rid: str, timeout: float) -> None:
    """Until reviewer ``rid`` stops working; past its own timeout (and a margin for the
    engine to stop it) pa stops it. Time spent queued (behind the session limits) does
    not count, as it does not for the turn's own timeout."""
    deadline = time.monotonic() + timeout + 60
    delay = 0.05
    while True:
        cl.refresh()
        status = cl.get_session(rid)["status"]
        if status not in _WORKING:
            return
        if status == "queued":
            deadline = time.monotonic() + timeout + 60
        if time.monotonic() > deadline:
            cl.stop(rid)
            return
        time.sleep(delay)
        delay = min(0.5, delay * 1.5)


@click.command()
@click.argument("session_id")
@click.option("--agent", help="Reviewer agent: claude, codex, gemini, … (`command` with --cmd).")
@click.option("--cmd", help="Program of a command agent as the reviewer, split like a shell.")
@click.option("--model", help="Model of the reviewer agent.")
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra environment for the reviewer agent (repeatable), as for `pa new`.",
)
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds before the reviewer is stopped (then nothing is stored).",
)
@click.option("--list", "list_", is_flag=True, help="List the reviewer comments on SESSION_ID.")
@click.option("--all", "show_all", is_flag=True, help="With --list: sent comments too.")
@click.option("--send", is_flag=True, help="Send the unsent comments as ONE follow-up.")
@click.option("--only", help="With --send: only these comment ids (e.g. 3,5).")
@click.option("--json", "as_json", is_flag=True)
def review(
    session_id: str,
    agent: str | None,
    cmd: str | None,
    model: str | None,
    env_pairs: tuple[str, ...],
    timeout: float,
    list_: bool,
    show_all: bool,
    send: bool,
    only: str | None,
    as_json: bool,
) -> None:
    """A second agent reviews a session's diff and leaves line comments; send them (all or
    some) to the session's agent as one follow-up.

    With --agent (or --cmd) a reviewer session starts in a worktree of its own at a
    snapshot of SESSION_ID's work (the author's worktree is not touched) with the diff in
    its prompt, and must answer with one JSON object:
    {"comments": [{"path", "line", "side": "new"|"old", "body"}]}. The answer is stored
    only when all of it holds: malformed JSON, a path or line the diff does not show, a
    failed or timed-out reviewer are errors (exit 1) and store nothing. The reviewer's
    worktree is then discarded (archived). The comments appear in the dashboard's diff view.

    --list shows them with their ids; --send sends the unsent ones (or --only some) as one
    follow-up, in the text the dashboard's "Send review comments" builds.
    """
    from parallel_agents.errors import UsageError

    modes = [m for m, on in (("--agent/--cmd", bool(agent or cmd)), ("--list", list_),
                             ("--send", send)) if on]
    if len(modes) != 1:
        raise UsageError(
            "say what to do: --agent AGENT (start a reviewer), --list or --send"
            if not modes
            else f"choose one of {', '.join(modes)}",
            hint=f"pa review {session_id} --agent claude; pa review {session_id} --send",
        )
    if only is not None and not send:
        raise UsageError("--only goes with --send")
    if show_all and not list_:
        raise UsageError("--all goes with --list")
    cl = client()
    cl.refresh()
    if list_:
        pending = cl.review_collect(session_id)
        got = cl.review_comments(session_id, unsent=not show_all)
        if as_json:
            emit_json({"session": pending["session"], "comments": got, "notes": pending["notes"]})
            return
        for note in pending["notes"]:
            click.echo(f"note: {note}", err=True)
        if not got:
            which = "" if show_all else "unsent "
            click.echo(f"no {which}reviewer comments on {pending['session']}")
            return
        _print_comments(got)
        return
    if send:
        res = cl.review_send(session_id, _ids(only) if only is not None else None)
        if as_json:
            emit_json(res)
        else:
            s = res["session"]
            click.echo(f"sent {len(res['sent'])} comment(s) to {s['id']} as turn {s['turns']}")
        return
    from parallel_agents.cmdline import split_cmd

    env: dict[str, str] = {}
    for pair in env_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise UsageError(f"--env {pair!r} is not KEY=VALUE")
        env[key] = value
    argv = split_cmd(cmd) if cmd is not None else None
    started = cl.review_start(
        session_id, agent=agent, cmd=argv, model=model, timeout=timeout, env=env or None
    )
    sid, rid = started["session"], started["review"]["id"]
    if not as_json:
        agent_name = started["review"]["agent"]
        click.echo(f"reviewer {rid} ({agent_name}) is reading {sid}'s diff…", err=True)
    try:
        _wait(cl, rid, timeout)
    except KeyboardInterrupt:
        import contextlib

        from parallel_agents.errors import PAError

        with contextlib.suppress(PAError):
            cl.stop(rid)
            cl.review_collect(sid)  # discards it (archived)
        sys.exit(130)
    res = cl.review_collect(sid, rid)
    if as_json:
        emit_json(res)
        return
    for note in res["notes"]:
        click.echo(f"note: {note}", err=True)
    if res.get("summary"):
        click.echo(f"summary: {printable(res['summary'])}")
    if not res["comments"]:
        click.echo(f"the reviewer left no comments on {sid}")
        return
    _print_comments(res["comments"])
    click.echo(f"send them to {sid}'s agent: pa review {sid} --send (some: --only ID,ID)")

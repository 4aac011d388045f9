"""Session commands: `pa new`, `ls`, `show`, `logs`, `wait`, `send`, `stop`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import (
    ago,
    emit_json,
    printable,
    run_lines,
    status_cell,
    table,
    text_cell,
    tty,
)


def _read_prompt(prompt: str | None) -> str:
    if prompt == "-" or (prompt is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    if prompt is None:
        raise click.UsageError("missing PROMPT (or pass - to read it from stdin)")
    return prompt


@click.command()
@click.argument("prompt", required=False)
@click.option("--repo", "repo_ref", help="Repo name or path (default: the repo around cwd).")
@click.option(
    "--agent",
    help="Agent to run: claude, codex, gemini, opencode, aider, mini, command… (default:"
    " the default_agent setting, `command` unless you set it; `command` with --cmd).",
)
@click.option("--cmd", help="Program for the command agent, split like a shell would.")
@click.option(
    "--model",
    help="Model name passed to the agent (default: setting agents.<agent>.model, else the"
    " agent CLI's own default).",
)
@click.option("--base", help="Branch, tag or commit to start from (default: current branch).")
@click.option("--title", help="Short title (default: first line of the prompt).")
@click.option(
    "--timeout",
    type=float,
    help="Stop the turn after this many seconds (default: setting timeout; 0: none).",
)
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra environment for the agent (repeatable); kept out of logs and events. "
    "KEY is letters, digits and '_' (not starting with a digit).",
)
@click.option("--interactive", is_flag=True, help="Run the agent's own TUI in tmux (pa attach).")
@click.option(
    "--attempts",
    type=int,
    metavar="N",
    help="Best-of-N: N sessions on the same base as one group (pa compare, pa pick); "
    "--agent may then list agents, taken in turn: --agent claude,codex.",
)
@click.option(
    "--group", "group_name", help="With --attempts: the group's name (default: attempts-ID)."
)
@click.option("--from-branch", help="Work on this existing branch (no new one; kept on discard).")
@click.option("--from-pr", type=int, metavar="N", help="Start from pull request N's branch (gh).")
@click.option("--from-issue", type=int, metavar="N", help="Start from issue N's text (gh).")
@click.option(
    "--parent", metavar="ID", help="The session starting this one (a lead); see mcp.max_depth."
)
@click.option(
    "--runtime",
    type=click.Choice(["local", "ray"]),
    help="Where its turns run: this machine or a Ray cluster (default: setting runtime.kind).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new session as JSON.")
def new(
    prompt: str | None,
    repo_ref: str | None,
    agent: str | None,
    cmd: str | None,
    model: str | None,
    base: str | None,
    title: str | None,
    timeout: float | None,
    env_pairs: tuple[str, ...],
    interactive: bool,
    attempts: int | None,
    group_name: str | None,
    from_branch: str | None,
    from_pr: int | None,
    from_issue: int | None,
    parent: str | None,
    runtime: str | None,
    as_json: bool,
) -> None:
    """Start a session: a new worktree and branch, and an agent working on PROMPT.

    Or start from existing work (one of): --from-branch BRANCH, --from-pr N, --from-issue N
    (PROMPT is then optional: built from the PR's or issue's title and body).

    Refused, registering nothing, inside a registered repository that was moved (run the
    `pa repo move` it names) and for a registered repo whose folder is missing.
    """
    from parallel_agents.cmdline import split_cmd
    from parallel_agents.errors import UsageError

    env: dict[str, str] = {}
    for pair in env_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise UsageError(f"--env {pair!r} is not KEY=VALUE")
        env[key] = value
    gh_source = from_pr is not None or from_issue is not None
    quiet = (interactive or gh_source) and prompt is None and sys.stdin.isatty()
    text = "" if quiet else _read_prompt(prompt)
    argv = split_cmd(cmd) if cmd is not None else None
    if attempts is not None or (agent and "," in agent) or group_name:
        if gh_source or from_branch is not None:
            raise UsageError("--from-branch, --from-pr and --from-issue start one session")
        _new_attempts(text, attempts, agent, argv, repo_ref, model, base, title, timeout, env,
                      interactive, group_name, as_json, parent, runtime)  # fmt: skip
        return
    s = client().new(
        text,
        repo=repo_ref,
        cwd=Path.cwd(),
        agent=agent,
        cmd=argv,
        model=model,
        base=base,
        title=title,
        timeout=timeout,
        env=env or None,
        interactive=interactive,
        source={"from_branch": from_branch, "from_pr": from_pr, "from_issue": from_issue},
        parent=parent,
        runtime=runtime,
    )
    if as_json:
        emit_json(s)
    else:
        click.echo(f"{s['id']}  {s['status']}  {s['branch']}  {s['worktree']}")
        if interactive:
            click.echo(f"attach with: pa attach {s['id']}   (detach: Ctrl-b d)")


def _new_attempts(
    text: str,
    attempts: int | None,
    agent: str | None,
    argv: list[str] | None,
    repo_ref: str | None,
    model: str | None,
    base: str | None,
    title: str | None,
    timeout: float | None,
    env: dict[str, str],
    interactive: bool,
    group_name: str | None,
    as_json: bool,
    parent: str | None = None,
    runtime: str | None = None,
) -> None:
    """`pa new --attempts N` (issue 15 §2): one group of N sessions (children of
    ``parent``, issue 18, when given)."""
    from parallel_agents.errors import UsageError

    if attempts is None:
        what = "--group names a group" if group_name else f"--agent {agent!r} lists agents"
        raise UsageError(
            f"{what}, which only goes with --attempts N",
            hint="add --attempts N (best-of-N), or name one agent",
        )
    if interactive:
        raise UsageError(
            "--attempts and --interactive do not go together",
            hint="attempts run headless; attach to none of them, compare them: pa compare",
        )
    agents = [a.strip() for a in agent.split(",")] if agent else None
    d = client().new_attempts(
        text, attempts, agents=agents, repo=repo_ref, cwd=Path.cwd(), cmd=argv, model=model,
        base=base, title=title, timeout=timeout, env=env or None, name=group_name,
        parent=parent, runtime=runtime,
    )  # fmt: skip
    if as_json:
        emit_json(d)
        return
    g = d["group"]
    click.echo(f"group {printable(g['name'])}: {len(d['sessions'])} of {attempts} attempts started")
    for t in g["tasks"]:
        s = t.get("session_info")
        if s is None:
            click.echo(f"  {t['key']}  {t['state']}  {printable(str(t['outcome'].get('error')))}")
        else:
            click.echo(f"  {t['key']}  {s['id']}  {s['status']}  {s['agent']}  {s['branch']}")
    click.echo(f"compare them: pa compare {printable(g['name'])}")


def _session_row(s: dict[str, Any], indent: int = 0) -> list[str]:
    mark = "●" if s["unread"] else " "
    # issue 18: a child shows under its parent, marked ↳ (indented once per level shown)
    lead = "  " * max(indent - 1, 0) + "↳ " if s.get("parent") else ""
    return [
        f"{mark} {s['id']}",
        text_cell(s["repo_name"]),
        lead + text_cell(s["title"][:40]),
        text_cell(s["agent"]),
        status_cell(s["status"]),
        str(s["turns"]),
        f"${s['cost_usd']:.2f}" if s["cost_usd"] else "-",
        _check_cell(s.get("check")),
        ago(s["updated_at"]),
    ]


def _family_order(sessions: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Each session with its level, children right after their parent (issue 18); a child
    whose parent is not listed stays where it is."""
    ids = {s["id"] for s in sessions}
    kids: dict[str, list[dict[str, Any]]] = {}
    for s in sessions:
        if s.get("parent") in ids:
            kids.setdefault(s["parent"], []).append(s)
    out: list[tuple[dict[str, Any], int]] = []

    def walk(s: dict[str, Any], level: int) -> None:
        out.append((s, level))
        for k in kids.get(s["id"], []):
            walk(k, level + 1)

    for s in sessions:
        if s.get("parent") not in ids:
            walk(s, 1 if s.get("parent") else 0)
    return out


def _check_cell(chk: dict[str, Any] | None) -> str:
    if not chk:
        return "-"
    if chk["ok"]:
        return "[green]pass[/]" if tty() else "pass"
    word = "timeout" if chk.get("timed_out") else "fail"
    return f"[red]{word}[/]" if tty() else word


@click.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Include merged and discarded sessions.")
@click.option("--repo", "repo_ref", help="Only sessions of this repo (name).")
@click.option("--status", "status", help="Only sessions with this status.")
@click.option("--children-of", "parent", metavar="ID", help="Only the sessions ID started.")
@click.option("--json", "as_json", is_flag=True)
def ls(
    show_all: bool, repo_ref: str | None, status: str | None, parent: str | None, as_json: bool
) -> None:
    """List live sessions: all but merged and discarded ones, the same set as the
    dashboard's "live" filter (● marks unread results; ↳ a session another one started,
    listed under it)."""
    from parallel_agents.errors import NotFound, UsageError
    from parallel_agents.models import Status

    if status:
        try:
            Status(status)
        except ValueError:
            raise UsageError(
                f"unknown status {status!r}", hint=", ".join(s.value for s in Status)
            ) from None
    cl = client()
    cl.refresh()
    sessions = cl.sessions(all=show_all or bool(status))
    if status:
        sessions = [s for s in sessions if s["status"] == status]
    if repo_ref:
        names = {r["name"] for r in cl.repo_ls()}
        paths = {r["path"]: r["name"] for r in cl.repo_ls()}
        name = repo_ref if repo_ref in names else paths.get(str(Path(repo_ref).resolve()))
        if name is None:
            raise NotFound(f"no registered repo named {repo_ref!r}", hint="see `pa repo ls`")
        sessions = [s for s in sessions if s["repo_name"] == name]
    if parent:
        pid = cl.get_session(parent)["id"]
        sessions = [s for s in sessions if s.get("parent") == pid]
    if as_json:
        emit_json(sessions)
        return
    if not sessions:
        click.echo("no sessions" + ("" if show_all else " (pa ls --all shows ended ones)"))
        return
    table(
        ["ID", "REPO", "TITLE", "AGENT", "STATUS", "TURNS", "COST", "CHECK", "UPDATED"],
        (_session_row(s, level) for s, level in _family_order(sessions)),
    )


@click.command()
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True)
def show(session_id: str, as_json: bool) -> None:
    """Details of one session: status, branch, worktree, turns."""
    cl = client()
    cl.refresh()
    s = cl.session(session_id)
    cl.mark_read(s["id"])
    if as_json:
        emit_json(s)
        return
    lines = [
        ("id", s["id"]),
        ("title", s["title"]),
        ("status", s["status"] + (f" — {s['error']}" if s["error"] else "")),
        ("repo", s["repo_name"]),
        ("agent", s["agent"] + (f" ({s['model']})" if s["model"] else "")),
        ("branch", s["branch"]),
        ("base", f"{s['base_ref']} ({s['base_commit'][:10]})"),
        (
            "worktree",
            s["worktree"] + ("" if s["worktree_exists"] else "  [MISSING: deleted outside pa]"),
        ),
    ]
    if s.get("parent"):  # issue 18
        lines.append(("parent", s["parent"]))
    if s.get("children"):
        lines += [("child", f"{c['id']}  {c['status']}  {c['title']}") for c in s["children"]]
    if s["agent_session_id"]:
        lines.append(("agent session", s["agent_session_id"]))
    if s["cost_usd"]:
        lines.append(("cost", f"${s['cost_usd']:.4f}"))
    chk = s.get("check")
    if chk:
        verdict = "passed" if chk["ok"] else ("timed out" if chk["timed_out"] else "failed")
        lines.append(
            ("check", f"{verdict} ({chk['command']}, {chk['duration_s']:.1f}s, turn {chk['turn']})")
        )
    if s.get("run"):  # issue 16 §1: the run script and its URLs
        lines += run_lines(s["run"])
    for k, v in lines:
        click.echo(f"{k:>14}: {printable(v)}")
    for t in s["turns"]:
        state = t["status"] + (f" (exit {t['exit_code']})" if t["exit_code"] is not None else "")
        first = t["prompt"].strip().splitlines()[0][:60] if t["prompt"].strip() else ""
        tokens = f" {t['input_tokens']}/{t['output_tokens']} tok" if t["input_tokens"] else ""
        click.echo(f"{'turn ' + str(t['n']):>14}: {state}{tokens}  {printable(first)}")
        if t["error"]:
            click.echo(f"{'':>14}  {printable(t['error'].strip()[-400:], keep_newlines=True)}")


def format_event(e: dict[str, Any]) -> str:
    p = e["payload"]
    k = e["kind"]
    if k in ("output", "raw", "message"):
        return str(p.get("text", ""))
    if k == "tool_call":
        inp = json.dumps(p.get("input"), ensure_ascii=False)
        return f"→ {p.get('name')} {inp[:200]}"
    if k == "tool_result":
        return f"← {'ok' if p.get('ok', True) else 'error'} {str(p.get('output', ''))[:200]}"
    if k == "command":
        return f"$ {p.get('command')}  (exit {p.get('exit_code')})"
    if k == "file_change":
        return f"✎ {p.get('kind')} {p.get('path')}"
    if k == "usage":
        cost = p.get("cost_usd")
        c = f", ${cost:.4f}" if isinstance(cost, int | float) else ""
        return f"· tokens in {p.get('input_tokens')} out {p.get('output_tokens')}{c}"
    if k == "rollback" or (k == "status" and "rollback_to_turn" in p):
        return (
            f"↺ rolled back to turn {p.get('rollback_to_turn')}"
            f" (the state before is kept at {p.get('undo_ref')})"
        )
    if k in ("conflict", "check") or (k == "status" and ("merged_into" in p or "pr" in p)):
        return _event_sentence(k, p)
    if k == "status":
        if "from" not in p:
            return ""
        extra = f": {p['error']}" if p.get("error") else ""
        return f"[{p.get('from')} → {p.get('to')}{extra}]"
    if k == "error":
        return f"error: {p.get('message')}"
    if k == "result":
        return f"result: {p.get('text')}"
    if k == "attention":
        return ""
    if k == "renamed":
        return f"renamed: {p.get('from')!r} → {p.get('to')!r}"
    return f"{k}: {json.dumps(p, ensure_ascii=False)[:200]}"


def _event_sentence(k: str, p: dict[str, Any]) -> str:
    """Review events (conflicts, checks, merges, pull requests) as what they mean."""
    if k == "conflict":
        paths = [str(x) for x in p.get("paths") or []]
        where = f" in {', '.join(paths[:5])}" + (" …" if len(paths) > 5 else "") if paths else ""
        return (
            f"⚠ conflicts with session {p.get('with')}{where}: whichever merges second will"
            f" need those files resolved (pa conflicts; pa merge ID --fix-conflicts)"
        )
    if k == "check":
        verdict = "passed" if p.get("ok") else ("timed out" if p.get("timed_out") else "failed")
        took = p.get("duration_s")
        took_s = f" in {took:.1f}s" if isinstance(took, int | float) else ""
        return f"check {verdict}{took_s}: {p.get('command')}"
    if "merged_into" in p:
        commit = str(p.get("commit") or "")[:10]
        return f"merged into {p['merged_into']}" + (f" at {commit}" if commit else "")
    return f"pull request: {p.get('pr')}"


def _repeats_message(e: dict[str, Any], last_message: str | None) -> bool:
    """The result an agent ends with usually repeats its last message word for word:
    print it once (the dashboard shows it once too)."""
    if e["kind"] != "result" or e["payload"].get("ok") is False:
        return False
    return str(e["payload"].get("text") or "").strip() == last_message


_WORKING = ("queued", "starting", "running")
# What `pa wait` counts as failed (exit 1). A stop is the person's choice, not a failure.
_WAIT_FAILED = ("failed", "interrupted")


@click.command()
@click.argument("session_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the session stops.")
@click.option("--raw", is_flag=True, help="Print the agent's raw output lines.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
def logs(session_id: str, follow: bool, raw: bool, as_json: bool) -> None:
    """Print a session's events (its output): all of them, page by page, up to its result
    and final status; with -f, then keep following until it stops working."""
    cl = client()
    cl.refresh()
    sid = cl.session(session_id)["id"]
    cl.mark_read(sid)
    last = 0
    last_message: str | None = None
    delay = 0.05
    while True:
        batch = cl.events(sid, after_seq=last)
        for e in batch:
            last = e["seq"]
            if as_json:
                click.echo(json.dumps(e, ensure_ascii=False))
            elif raw:
                if e["payload"].get("output_cut") is not None:  # the cap's note, not output
                    click.echo(printable(format_event(e)))
                elif e.get("raw") is not None:
                    # An agent's output may carry OSC/BEL sequences that retitle the window
                    # or worse: shown as escapes, like titles in `pa ls`.
                    click.echo(printable(e["raw"], keep_newlines=True))
            elif not _repeats_message(e, last_message):
                text = format_event(e)
                if text:
                    click.echo(printable(text, keep_newlines=True))
            if e["kind"] == "message":
                last_message = str(e["payload"].get("text") or "").strip()
            elif e["kind"] == "output":  # one line or a run of them: the last one counts
                last_message = str(e["payload"].get("text") or "").rsplit("\n", 1)[-1].strip()
            elif e["kind"] == "result":
                last_message = None
        if not follow:
            if batch:  # a page (the server sends up to 1000 events): ask for the next one
                continue
            break
        ended = not batch and cl.session(sid)["status"] not in _WORKING
        if ended and not cl.events(sid, after_seq=last):
            break
        cl.refresh()
        time.sleep(delay)
        delay = 0.05 if batch else min(0.5, delay * 1.5)


@click.command()
@click.argument("session_ids", nargs=-1, required=True)
@click.option(
    "--timeout",
    type=float,
    help="Give up after this many seconds and exit 124 (default: no limit).",
)
@click.option("--json", "as_json", is_flag=True)
def wait(session_ids: tuple[str, ...], timeout: float | None, as_json: bool) -> None:
    """Wait until each session stops working (queued, starting or running).

    Also returns when a session needs input: it is waiting for you, not working.

    \b
    Exit codes:
      0    none failed: each is idle, needs_input, stopped (by you, also before it
           started), merged or discarded
      1    at least one failed (also a turn timeout) or was interrupted (its agent
           died with pa, e.g. a reboot)
      124  --timeout passed while one was still working (listed on stderr)
    """
    cl = client()
    ids = [cl.session(x)["id"] for x in session_ids]
    deadline = time.monotonic() + timeout if timeout else None
    delay = 0.05
    while True:
        cl.refresh()
        sessions = [cl.session(i) for i in ids]
        waiting = [s for s in sessions if s["status"] in _WORKING]
        if not waiting:
            break
        if deadline is not None and time.monotonic() > deadline:
            if as_json:
                emit_json(sessions)
            click.echo(f"timed out; still working: {', '.join(s['id'] for s in waiting)}", err=True)
            sys.exit(124)
        time.sleep(delay)
        delay = min(0.5, delay * 1.5)
    bad = [s for s in sessions if s["status"] in _WAIT_FAILED]
    if as_json:
        emit_json(sessions)
    else:
        for s in sessions:
            click.echo(f"{s['id']}  {s['status']}" + (f"  {s['error']}" if s["error"] else ""))
    if bad:
        sys.exit(1)


@click.command()
@click.argument("session_id")
@click.argument("prompt", required=False)
@click.option("--json", "as_json", is_flag=True)
def send(session_id: str, prompt: str | None, as_json: bool) -> None:
    """Send a follow-up: the next turn, in the same worktree and conversation.

    Refused up front (nothing is queued) when the session's repository is missing or its
    worktree lost its link to it: `pa repo move NAME NEWPATH` re-links a moved repository.
    """
    cl = client()
    cl.refresh()
    s = cl.send(session_id, _read_prompt(prompt))
    if as_json:
        emit_json(s)
    else:
        click.echo(f"{s['id']}  {s['status']}  turn {s['turns']}")


@click.command(
    help="Stop a session's agent (interrupt, terminate, then kill) and everything it started, "
    "background processes and daemons included. Keeps the worktree and branch, and "
    "checkpoints the stopped turn (interactive sessions too): see it with "
    "`pa diff --turn N`, go on with `pa send`."
)
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True)
def stop(session_id: str, as_json: bool) -> None:
    cl = client()
    cl.refresh()
    d = cl.stop(session_id)
    if as_json:
        emit_json(d)
    else:
        click.echo(f"{d['id']}  {d['status']}")


@click.command(
    help="Give a session a new TITLE (what `pa ls` and the dashboard show). The branch keeps "
    "its name, so nothing already pushed or checked out changes; the rename is an event in "
    "`pa logs`."
)
@click.argument("session_id")
@click.argument("title")
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON.")
def rename(session_id: str, title: str, as_json: bool) -> None:
    d = client().rename(session_id, title)
    if as_json:
        emit_json(d)
    else:
        click.echo(f"{d['id']}  {printable(d['title'])}")

"""The `pa` command line: parse, call the orchestrator, print.

Heavy modules (rich, FastAPI, the agents' parsers) are imported inside the commands
that need them so `pa ls` starts fast.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from parallel_agents.errors import PAError

if TYPE_CHECKING:
    from parallel_agents.client import Client as Backend
    from parallel_agents.sessions.orchestrator import App


# -- plumbing --------------------------------------------------------------------------
def _app() -> App:
    from parallel_agents.sessions.orchestrator import App

    return App.open()


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _tty() -> bool:
    return sys.stdout.isatty()


def _table(columns: list[str], rows: Iterable[list[str]], *, title: str | None = None) -> None:
    rows = list(rows)
    if _tty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, show_edge=False, pad_edge=False, box=None, header_style="bold")
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*r)
        Console().print(t)
    else:
        click.echo("\t".join(columns))
        for r in rows:
            click.echo("\t".join(c.replace("\t", " ").replace("\n", " ") for c in r))


_STATUS_STYLE = {
    "running": "cyan",
    "starting": "cyan",
    "queued": "dim",
    "needs_input": "bold yellow",
    "idle": "green",
    "failed": "bold red",
    "stopped": "magenta",
    "interrupted": "yellow",
    "merged": "blue",
    "discarded": "dim",
}


# C0 controls but tab and newline, DEL, and C1 controls: a terminal acts on these.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with terminal control characters shown as escapes (``\\x1b``), so a
    title or prompt can never move the cursor, retitle the window or change colours."""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return out if keep_newlines else out.replace("\n", "\\n")


def _text_cell(text: str) -> str:
    """A table cell of user text: escaped for the terminal, and for rich's markup on a tty."""
    safe = printable(text)
    if _tty():
        from rich.markup import escape

        return escape(safe)
    return safe


def _status_cell(status: str) -> str:
    if _tty():
        return f"[{_STATUS_STYLE.get(status, '')}]{status}[/]"
    return status


def _ago(ts: float) -> str:
    d = max(0.0, time.time() - ts)
    if d < 60:
        return f"{d:.0f}s"
    if d < 3600:
        return f"{d / 60:.0f}m"
    if d < 86400:
        return f"{d / 3600:.1f}h"
    return f"{d / 86400:.1f}d"


class PAGroup(click.Group):
    """Turns expected errors into a clear message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PAError as e:
            click.secho(f"error: {e.message}", fg="red", err=True)
            if e.hint:
                click.echo(f"hint: {e.hint}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as e:
            import errno

            if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG):
                raise
            click.secho(f"error: {e.strerror}: {e.filename or ''}".rstrip(": "), fg="red", err=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                click.echo("hint: free some disk space and run the command again", err=True)
            ctx.exit(1)


class _MainGroup(PAGroup):
    """`pa` itself: its help lists the commands by purpose (see cli_help)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from parallel_agents.cli.help import format_sections

        format_sections(self, ctx, formatter)


@click.group(
    cls=_MainGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="`pa COMMAND --help` shows a command's options, their defaults and an example.",
)
@click.version_option(package_name="parallel-agents", prog_name="pa")
def main() -> None:
    """Run many AI coding agents in parallel, each in its own git worktree.

    Commands talk to the pa server of this PA_HOME, starting it in the background when
    it is not running (PA_SERVER_AUTOSTART=0 or server.autostart = false: work in-process).
    """


def _backend() -> Backend:
    from parallel_agents.client import connect

    return connect()


# -- repos -----------------------------------------------------------------------------
@main.group(cls=PAGroup)
def repo() -> None:
    """Register and list repositories."""


@repo.command("add")
@click.argument("path", required=False, default=".")
@click.option("--name", help="Name to refer to the repo by (default: directory name).")
@click.option("--base", help="Default base branch for new sessions (default: current branch).")
@click.option("--json", "as_json", is_flag=True, help="Print the repo as JSON.")
def repo_add(path: str, name: str | None, base: str | None, as_json: bool) -> None:
    """Register the git repository at PATH (default: current directory).

    A registered repository that was moved to PATH is recognised (by the id pa keeps in
    its .git/pa-repo-id, or by its links to known sessions' worktrees) and refused, with
    the `pa repo move NAME PATH` to run instead; a copy whose original is still in place
    is registered as a repository of its own.
    """
    r = _backend().repo_add(path, name, base)
    if as_json:
        _emit_json(r)
    else:
        click.echo(f"registered {r['name']} ({r['path']})")


@repo.command("ls")
@click.option("--json", "as_json", is_flag=True)
def repo_ls(as_json: bool) -> None:
    """List registered repositories."""
    repos = _backend().repo_ls()
    if as_json:
        _emit_json(repos)
        return
    if not repos:
        click.echo("no repos registered; add one with `pa repo add PATH`")
        return
    _table(
        ["NAME", "PATH", "BASE"],
        (
            [r["name"], r["path"] + _missing_mark(r["name"], r["path"]), r["base"] or "(current)"]
            for r in repos
        ),
    )


def _missing_mark(name: str, path: str) -> str:
    if (Path(path) / ".git").exists():
        return ""
    return f"  [MISSING: if moved, pa repo move {name} NEWPATH]"


@repo.command("move")
@click.argument("name")
@click.argument("new_path", metavar="NEWPATH")
@click.option("--json", "as_json", is_flag=True, help="Print what was re-pointed as JSON.")
def repo_move(name: str, new_path: str, as_json: bool) -> None:
    """Point repo NAME at NEWPATH, the folder you moved the repository to.

    Runs `git worktree repair` so the sessions' worktrees (and git's records of them)
    link to the moved repository again; files, branches and sessions are kept as they
    are. Refuses (changing nothing) when NEWPATH is another repository, is registered
    already, or when the old path still holds the repository (a copy, not a move:
    register it with `pa repo add NEWPATH --name OTHER`).
    """
    res = _backend().repo_move(name, new_path)
    if as_json:
        _emit_json(res)
        return
    click.echo(f"{name}: {res['from']} → {res['to']}")
    if res["relinked"]:
        click.echo(f"re-linked the worktrees of {len(res['relinked'])} session(s)")
    for u in res["unlinked"]:
        click.echo(f"warning: {u['worktree']} (session {u['session']}) is not linked", err=True)
    if res["unlinked"]:
        click.echo("hint: see `pa doctor` for what is wrong with them", err=True)


@repo.command("rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def repo_rm(name: str, as_json: bool) -> None:
    """Unregister a repository (its files are not touched).

    Refused while it has live sessions. Works for a repository whose folder is gone: then
    only sessions whose agent is still at work hold it up (pa stop ID), and the worktree
    folders of its sessions are left exactly as they are (copy out what you need).
    """
    r = _backend().repo_rm(name)
    if as_json:
        _emit_json(r)
    else:
        click.echo(f"unregistered {r['name']}")


# -- sessions --------------------------------------------------------------------------
def _read_prompt(prompt: str | None) -> str:
    if prompt == "-" or (prompt is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    if prompt is None:
        raise click.UsageError("missing PROMPT (or pass - to read it from stdin)")
    return prompt


@main.command()
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
    as_json: bool,
) -> None:
    """Start a session: a new worktree and branch, and an agent working on PROMPT.

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
    text = "" if (interactive and prompt is None and sys.stdin.isatty()) else _read_prompt(prompt)
    argv = split_cmd(cmd) if cmd is not None else None
    s = _backend().new(
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
    )
    if as_json:
        _emit_json(s)
    else:
        click.echo(f"{s['id']}  {s['status']}  {s['branch']}  {s['worktree']}")
        if interactive:
            click.echo(f"attach with: pa attach {s['id']}   (detach: Ctrl-b d)")


def _session_row(s: dict[str, Any]) -> list[str]:
    mark = "●" if s["unread"] else " "
    return [
        f"{mark} {s['id']}",
        _text_cell(s["repo_name"]),
        _text_cell(s["title"][:40]),
        _text_cell(s["agent"]),
        _status_cell(s["status"]),
        str(s["turns"]),
        f"${s['cost_usd']:.2f}" if s["cost_usd"] else "-",
        _check_cell(s.get("check")),
        _ago(s["updated_at"]),
    ]


def _check_cell(chk: dict[str, Any] | None) -> str:
    if not chk:
        return "-"
    if chk["ok"]:
        return "[green]pass[/]" if _tty() else "pass"
    word = "timeout" if chk.get("timed_out") else "fail"
    return f"[red]{word}[/]" if _tty() else word


@main.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Include merged and discarded sessions.")
@click.option("--repo", "repo_ref", help="Only sessions of this repo (name).")
@click.option("--status", "status", help="Only sessions with this status.")
@click.option("--json", "as_json", is_flag=True)
def ls(show_all: bool, repo_ref: str | None, status: str | None, as_json: bool) -> None:
    """List live sessions: all but merged and discarded ones, the same set as the
    dashboard's "live" filter (● marks unread results)."""
    from parallel_agents.errors import NotFound, UsageError
    from parallel_agents.models import Status

    if status:
        try:
            Status(status)
        except ValueError:
            raise UsageError(
                f"unknown status {status!r}", hint=", ".join(s.value for s in Status)
            ) from None
    be = _backend()
    be.refresh()
    sessions = be.sessions(all=show_all or bool(status))
    if status:
        sessions = [s for s in sessions if s["status"] == status]
    if repo_ref:
        names = {r["name"] for r in be.repo_ls()}
        paths = {r["path"]: r["name"] for r in be.repo_ls()}
        name = repo_ref if repo_ref in names else paths.get(str(Path(repo_ref).resolve()))
        if name is None:
            raise NotFound(f"no registered repo named {repo_ref!r}", hint="see `pa repo ls`")
        sessions = [s for s in sessions if s["repo_name"] == name]
    if as_json:
        _emit_json(sessions)
        return
    if not sessions:
        click.echo("no sessions" + ("" if show_all else " (pa ls --all shows ended ones)"))
        return
    _table(
        ["ID", "REPO", "TITLE", "AGENT", "STATUS", "TURNS", "COST", "CHECK", "UPDATED"],
        (_session_row(s) for s in sessions),
    )


@main.command()
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True)
def show(session_id: str, as_json: bool) -> None:
    """Details of one session: status, branch, worktree, turns."""
    be = _backend()
    be.refresh()
    s = be.session(session_id)
    be.mark_read(s["id"])
    if as_json:
        _emit_json(s)
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


@main.command()
@click.argument("session_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the session stops.")
@click.option("--raw", is_flag=True, help="Print the agent's raw output lines.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
def logs(session_id: str, follow: bool, raw: bool, as_json: bool) -> None:
    """Print a session's events (its output): all of them, page by page, up to its result
    and final status; with -f, then keep following until it stops working."""
    be = _backend()
    be.refresh()
    sid = be.session(session_id)["id"]
    be.mark_read(sid)
    last = 0
    last_message: str | None = None
    delay = 0.05
    while True:
        batch = be.events(sid, after_seq=last)
        for e in batch:
            last = e["seq"]
            if as_json:
                click.echo(json.dumps(e, ensure_ascii=False))
            elif raw:
                if e.get("raw") is not None:
                    # An agent's output may carry OSC/BEL sequences that retitle the window
                    # or worse: shown as escapes, like titles in `pa ls`.
                    click.echo(printable(e["raw"], keep_newlines=True))
            elif not _repeats_message(e, last_message):
                text = format_event(e)
                if text:
                    click.echo(printable(text, keep_newlines=True))
            if e["kind"] in ("message", "output"):
                last_message = str(e["payload"].get("text") or "").strip()
            elif e["kind"] == "result":
                last_message = None
        if not follow:
            if batch:  # a page (the server sends up to 1000 events): ask for the next one
                continue
            break
        ended = not batch and be.session(sid)["status"] not in _WORKING
        if ended and not be.events(sid, after_seq=last):
            break
        be.refresh()
        time.sleep(delay)
        delay = 0.05 if batch else min(0.5, delay * 1.5)


@main.command()
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
    be = _backend()
    ids = [be.session(x)["id"] for x in session_ids]
    deadline = time.monotonic() + timeout if timeout else None
    delay = 0.05
    while True:
        be.refresh()
        sessions = [be.session(i) for i in ids]
        waiting = [s for s in sessions if s["status"] in _WORKING]
        if not waiting:
            break
        if deadline is not None and time.monotonic() > deadline:
            if as_json:
                _emit_json(sessions)
            click.echo(f"timed out; still working: {', '.join(s['id'] for s in waiting)}", err=True)
            sys.exit(124)
        time.sleep(delay)
        delay = min(0.5, delay * 1.5)
    bad = [s for s in sessions if s["status"] in _WAIT_FAILED]
    if as_json:
        _emit_json(sessions)
    else:
        for s in sessions:
            click.echo(f"{s['id']}  {s['status']}" + (f"  {s['error']}" if s["error"] else ""))
    if bad:
        sys.exit(1)


def _simple(
    name: str,
    doc: str,
    call: Callable[[Backend, str], dict[str, Any]],
    say: Callable[[dict[str, Any]], str],
) -> None:
    @main.command(name, help=doc)
    @click.argument("session_id")
    @click.option("--json", "as_json", is_flag=True)
    def cmd(session_id: str, as_json: bool) -> None:
        be = _backend()
        be.refresh()
        d = call(be, session_id)
        if as_json:
            _emit_json(d)
        else:
            click.echo(say(d))


@main.command()
@click.argument("session_id")
@click.argument("prompt", required=False)
@click.option("--json", "as_json", is_flag=True)
def send(session_id: str, prompt: str | None, as_json: bool) -> None:
    """Send a follow-up: the next turn, in the same worktree and conversation.

    Refused up front (nothing is queued) when the session's repository is missing or its
    worktree lost its link to it: `pa repo move NAME NEWPATH` re-links a moved repository.
    """
    be = _backend()
    be.refresh()
    s = be.send(session_id, _read_prompt(prompt))
    if as_json:
        _emit_json(s)
    else:
        click.echo(f"{s['id']}  {s['status']}  turn {s['turns']}")


_simple(
    "stop",
    "Stop a session's agent (interrupt, terminate, then kill) and everything it started, "
    "background processes and daemons included. Keeps the worktree and branch, and "
    "checkpoints the stopped turn (interactive sessions too): see it with "
    "`pa diff --turn N`, go on with `pa send`.",
    lambda be, sid: be.stop(sid),
    lambda d: f"{d['id']}  {d['status']}",
)


def _discarded(d: dict[str, Any]) -> str:
    a = d.get("archive") or {}
    ref = a.get("ref")
    head = f"discarded {d['id']}"
    lines = [head + (f"; archived as {ref} (pa restore {d['id']})" if ref else "")]
    if a.get("kind") == "full":
        kept = ["commits, uncommitted and untracked files"]
        if a.get("ignored"):
            kept.append(f"{a['ignored']} ignored file(s)/folder(s)")
        if a.get("index_kept"):
            kept.append("the staging area")
        if a.get("empty_dirs"):
            kept.append(f"{a['empty_dirs']} empty folder(s)")
        if a.get("nested"):
            kept.append("nested repos " + ", ".join(p + "/" for p in a["nested"]))
        lines.append("kept: " + "; ".join(kept))
    lines += [f"note: {n}" for n in a.get("notes") or []]
    return "\n".join(lines)


_simple(
    "discard",
    "Remove a session's worktree and branch, archiving its final state first under a new "
    "refs/pa/archive/<id> ref (an existing archive is never overwritten): commits, "
    "uncommitted, untracked and ignored files, the staging area, empty folders, and nested "
    "repositories (moved whole next to the archive, in .git/pa-archive/). Not kept: caches "
    "such as node_modules, .venv, __pycache__ and ignored files over 50 MB (listed in the "
    "output). If it is interrupted, run it again or `pa doctor --repair`: both finish it "
    "from the complete archive. Undo with `pa restore ID`.",
    lambda be, sid: be.discard(sid),
    _discarded,
)


@main.command()
@click.argument("session_id")
@click.option(
    "--archive",
    "archive_ref",
    metavar="REF",
    help="Restore from this archive ref (e.g. refs/pa/archive/orphan-… made by pa doctor).",
)
@click.option("--json", "as_json", is_flag=True)
def restore(session_id: str, archive_ref: str | None, as_json: bool) -> None:
    """Bring a discarded session's worktree and branch back from its archive: files,
    ignored files, staging area, empty folders and nested repos. Also brings back a session
    whose worktree is gone from the archive `pa doctor` made of it (refs/pa/archive/orphan-…),
    or from --archive REF. A branch of the same name that has commits the archive lacks is
    never moved: the session continues on BRANCH-restored and the output says so."""
    be = _backend()
    be.refresh()
    d = be.restore(session_id, archive_ref)
    if as_json:
        _emit_json(d)
        return
    click.echo(f"restored {d['id']} at {d['worktree']} on {d['branch']}")
    for n in d.get("notes") or []:
        click.echo(f"note: {n}")


@main.command()
@click.argument("session_id")
@click.option("--stat", is_flag=True, help="Summary of changed files and lines.")
@click.option("--name-only", is_flag=True, help="Only the changed paths.")
@click.option(
    "--turn",
    type=int,
    help="Only what this turn changed, from where it started (after a rollback: its target).",
)
@click.option("--json", "as_json", is_flag=True, help="Changed files with counts as JSON.")
def diff(session_id: str, stat: bool, name_only: bool, turn: int | None, as_json: bool) -> None:
    """What the session changed against its base: commits, uncommitted and untracked files."""
    be = _backend()
    be.refresh()
    if as_json:
        _emit_json(be.diff_json(session_id, turn))
        return
    for chunk in be.diff_text(session_id, turn, stat=stat, name_only=name_only):
        sys.stdout.write(chunk)
    sys.stdout.flush()


@main.command()
@click.argument("session_id")
@click.option("--turn", type=int, required=True, help="Turn whose checkpoint to restore.")
@click.option("--json", "as_json", is_flag=True)
def rollback(session_id: str, turn: int, as_json: bool) -> None:
    """Restore the worktree to the end of a turn (the present is checkpointed first, staging
    area included, under refs/pa/sessions/ID/before-rollback/…). Ignored files are left as
    they are. Turn checkpoints do not record the staging area: afterwards nothing is staged
    (the index matches the turn's HEAD), and the output says so.

    The next turn starts from there (its `pa diff --turn` shows only its own changes) and
    the conversation shows "rolled back to turn N". Refused while the agent works or when
    the session's repository is missing.
    """
    be = _backend()
    be.refresh()
    res = be.rollback(session_id, turn)
    if as_json:
        _emit_json(res)
    else:
        click.echo(
            f"{res['session'] if isinstance(res['session'], str) else res['session']['id']}: "
            f"worktree restored to turn {turn} ({res['commit'][:10]}); "
            f"the previous state is kept at {res['undo_ref']}"
        )
        if res.get("note"):
            click.echo(f"note: {res['note']}")


@main.command()
@click.argument("session_ids", nargs=-1, required=True)
@click.option("--check", "command", help="Command to run instead of the repo's `check`.")
@click.option(
    "--timeout",
    type=float,
    help="Seconds before the check is killed (default: setting check.timeout, 600).",
)
@click.option("--json", "as_json", is_flag=True)
def check(
    session_ids: tuple[str, ...], command: str | None, timeout: float | None, as_json: bool
) -> None:
    """Run the repo's check command in each session's worktree (in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    from parallel_agents.config import load_settings

    be = _backend()
    be.refresh()
    limit = int(load_settings().get("check.parallel") or 2)
    with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:
        results = list(pool.map(lambda sid: be.check(sid, command, timeout), session_ids))
    if as_json:
        _emit_json(results)
    else:
        for r in results:
            verdict = "passed" if r["ok"] else ("timed out" if r["timed_out"] else "failed")
            click.echo(f"{r['session_id']}  check {verdict} in {r['duration_s']:.1f}s")
            if not r["ok"]:
                click.echo(r["output_tail"].rstrip()[-1500:])
    if not all(r["ok"] for r in results):
        sys.exit(1)


@main.command()
@click.option("--repo", "repo_ref", help="Only this repo.")
@click.option("--json", "as_json", is_flag=True)
def conflicts(repo_ref: str | None, as_json: bool) -> None:
    """Forecast: does each live session merge cleanly, and which pairs conflict?

    A repository that is missing (moved or deleted) is skipped and flagged; the others are
    still forecast.
    """
    be = _backend()
    be.refresh()
    fc = be.conflicts(repo_ref)
    if as_json:
        _emit_json(fc)
        return
    for sk in fc.get("skipped") or []:
        click.echo(f"warning: repo {sk['repo']} not forecast: {sk['reason']}", err=True)
        click.echo(f"hint: {sk['hint']}", err=True)
    if not fc["sessions"]:
        click.echo("no live sessions")
        return
    rows = []
    for sid, info in fc["sessions"].items():
        base = (
            f"SKIPPED: {info['skipped']}"
            if info.get("skipped")
            else "clean"
            if info["clean_with_base"]
            else "CONFLICT: " + ", ".join(info["base_conflict_paths"][:5])
        )
        rows.append([sid, info["repo"], base, ", ".join(info["conflicts_with"]) or "-"])
    _table(["SESSION", "REPO", "WITH BASE", "CONFLICTS WITH"], rows)
    for p in fc["pairs"]:
        click.echo(f"{p['a']} × {p['b']}: {', '.join(p['paths'])}")


@main.command()
@click.argument("session_ids", nargs=-1, required=True)
@click.option(
    "--strategy",
    type=click.Choice(["merge", "squash", "rebase"]),
    help="How to land each session (default: setting merge.strategy).",
)
@click.option("--into", help="Target branch (default: the session's base branch).")
@click.option("--message", "-m", help="Commit message (default: title and turn summary).")
@click.option(
    "--fix-conflicts",
    is_flag=True,
    help="On a conflict, send the agent a follow-up to merge the new base and resolve.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Move the target branch even where it is checked out and git cannot update "
    "the files there; pa then says how to bring them along.",
)
@click.option("--json", "as_json", is_flag=True)
def merge(
    session_ids: tuple[str, ...],
    strategy: str | None,
    into: str | None,
    message: str | None,
    fix_conflicts: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Merge sessions in order onto the target branch (a merge queue).

    Keeps: the agent's own commits; uncommitted work in a worktree becomes one commit
    whose message is the session's title and prompts (none when there is nothing
    uncommitted, and no empty commits). The result is computed without a working tree.
    Files put into the worktree by `copy = [...]` (a .env) are never merged unless the
    agent changed them; then they are, and a WARNING note names each one.

    Wherever the target branch is checked out (your main checkout or a linked
    worktree) its index and files move with the branch, under one per-repo lock, keeping
    your local changes git can carry (like `git merge --ff-only`). Refuses (exit 1,
    status checkout_blocked, branch not moved) when git cannot update them: changes or
    untracked files in the way, or a held index.lock; fix that and run it again, or use
    --force (the branch moves; exit 1 while a checkout is left behind, which
    `pa doctor --repair` brings along once the files in the way are gone). Refuses
    while the target is checked out in a running session's worktree.

    The queue stops at the first conflict, failed check or blocked checkout and leaves
    what merged so far merged. Running it again is safe: work already merged is not
    merged twice, and a merge interrupted after moving the branch is finished first
    (`pa doctor --repair` finishes it too).
    """
    be = _backend()
    be.refresh()
    rep = be.merge(
        list(session_ids),
        strategy=strategy,
        into=into,
        message=message,
        fix_conflicts=fix_conflicts,
        force=force,
    )
    if as_json:
        _emit_json(rep)
    else:
        for it in rep["items"]:
            line = f"{it['session_id']}  {it['status']}"
            if it["commit"]:
                line += f"  {it['commit'][:10]}"
            if it["conflict_paths"]:
                line += "  conflicts: " + ", ".join(it["conflict_paths"])
            if it["detail"]:
                line += f"  ({it['detail']})"
            click.echo(line)
            if it.get("check") and not it["check"]["ok"]:
                click.echo(it["check"]["output_tail"].rstrip()[-1500:])
        for note in rep["notes"]:
            click.echo(f"note: {note}")
        for hint in _merge_hints(rep, fix_conflicts):
            click.echo(f"hint: {hint}", err=True)
    if not rep["ok"] or rep.get("checkouts_behind"):
        sys.exit(1)


def _merge_hints(rep: dict[str, Any], fixing: bool) -> list[str]:
    """What to do next when the queue stopped: each way out, as a command to run."""
    target = rep.get("target_branch") or "the target branch"
    out: list[str] = []
    for it in rep["items"]:
        sid = it["session_id"]
        if it["status"] == "conflict" and fixing:
            out.append(f"when the agent is done (pa wait {sid}), run `pa merge {sid}` again")
        elif it["status"] == "conflict":
            out.append(
                f"`pa merge {sid} --fix-conflicts` has the agent bring {target} into its"
                f" branch and resolve the conflicts; or see its changes with `pa diff {sid}`"
                f" and resolve them yourself in its worktree, then run `pa merge {sid}` again"
            )
        elif it["status"] == "check_failed":
            out.append(
                f"ask the agent to fix it (pa send {sid} 'make the check pass'), or run the"
                f" check yourself with `pa check {sid}`; then `pa merge {sid}` again"
            )
    skipped = [it["session_id"] for it in rep["items"] if it["status"] == "skipped"]
    if skipped:
        out.append(f"not tried yet: {' '.join(skipped)} (pa merge {' '.join(skipped)})")
    return out


@main.command()
@click.argument("session_id")
@click.option("--draft", is_flag=True, help="Open the pull request as a draft.")
@click.option("--json", "as_json", is_flag=True)
def pr(session_id: str, draft: bool, as_json: bool) -> None:
    """Commit the session's work, push its branch to origin and open a pull request.

    Uncommitted changes in the worktree are committed onto the session's branch first, as
    one commit with the merge's message (title and prompts); files put there by `copy =
    [...]` stay out unless the agent changed them (then a WARNING note names them). The
    worktree's files are not touched. Refuses, before committing or pushing anything, while
    the agent is working, when there is no `origin` remote, or when the GitHub CLI (`gh`)
    is missing or not logged in (`gh auth login`). If gh fails after the push, the pushed
    branch stays; fix what gh says and run pa pr again.
    """
    be = _backend()
    res = be.pr(session_id, draft)
    if as_json:
        _emit_json(res)
    else:
        click.echo(res["message"])
        for note in res["notes"]:
            click.echo(f"note: {note}")


@main.command()
@click.option(
    "--agent",
    default="mini",
    show_default=True,
    help="Agent CLI to run: mini, claude, codex, gemini, opencode.",
)
@click.option(
    "--sessions",
    "count",
    type=int,
    default=3,
    show_default=True,
    help="How many sessions to start in parallel (1-4).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="Where to create the sample repo (default: under PA_HOME/demo).",
)
@click.option("--json", "as_json", is_flag=True)
def demo(agent: str, count: int, directory: Path | None, as_json: bool) -> None:
    """Watch real agents fix a sample repo in parallel, offline (scripted model)."""
    from parallel_agents.ops.demo import run_demo

    app = _app()
    echo = (lambda _m: None) if as_json else click.echo
    res = run_demo(app, agent=agent, count=count, directory=directory, echo=echo, live=_tty())
    if as_json:
        _emit_json(res)


@main.group(cls=PAGroup)
def dev() -> None:
    """Tools for testing pa and your own agent setups."""


@dev.command("model-server")
@click.option(
    "--script",
    "script_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON script of model turns (see parallel_agents.testing.script).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
def dev_model_server(script_path: Path, host: str, port: int) -> None:
    """Run the scripted model server (Anthropic, OpenAI and Gemini APIs) in the foreground."""
    from parallel_agents.testing import ScriptError, serve_forever

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}, not loopback", err=True)
    try:
        serve_forever(script_path, host=host, port=port)
    except ScriptError as e:
        raise PAError(str(e)) from e
    except OSError as e:
        raise PAError(
            f"cannot listen on {host}:{port}: {e.strerror}",
            hint="pick another --port (0 picks a free one)",
        ) from e


def _register_extras() -> None:
    """Commands that live in their own modules (server, dashboard, tmux, operations)."""
    from parallel_agents.cli import interactive as cli_interactive
    from parallel_agents.cli import ops as cli_ops
    from parallel_agents.cli import server as cli_server
    from parallel_agents.cli import web as cli_web

    for mod in (cli_server, cli_web, cli_interactive, cli_ops):
        mod.register(main)
    from parallel_agents.cli import help as cli_help

    cli_help.apply(main)


_register_extras()

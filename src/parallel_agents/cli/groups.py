"""Group commands (issue 15): `pa groups`; best-of-N attempts: `pa compare`, `pa pick`
(`pa new PROMPT --attempts N` starts them, in cli/sessions.py)."""

from __future__ import annotations

import time
from typing import Any

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import ago, emit_json, printable, status_cell, table, text_cell


@click.command("groups")
@click.option(
    "--kind", type=click.Choice(["attempts", "map", "plan", "reduce"]), help="Only these."
)
@click.option("--json", "as_json", is_flag=True)
def groups(kind: str | None, as_json: bool) -> None:
    """List groups of sessions: best-of-N attempts, maps, plans."""
    gs = client().groups(kind)
    if as_json:
        emit_json(gs)
        return
    if not gs:
        click.echo("no groups (pa new PROMPT --attempts N makes one)")
        return
    table(
        ["ID", "NAME", "KIND", "STATE", "TASKS", "CREATED"],
        (
            [
                g["id"],
                text_cell(g["name"]),
                g["kind"],
                g["state"],
                ", ".join(f"{n} {s}" for s, n in g["tasks"].items()),
                ago(g["created_at"]),
            ]
            for g in gs
        ),
    )


def _check(chk: dict[str, Any] | None) -> str:
    if not chk:
        return "-"
    return "pass" if chk["ok"] else ("timeout" if chk.get("timed_out") else "fail")


def _conflicts(c: dict[str, Any] | None) -> str:
    if not c:
        return "-"
    parts = []
    if c.get("clean_with_base") is False:
        parts.append("base")
    parts += list(c.get("with") or [])
    return ", ".join(parts) if parts else "none"


def _row(a: dict[str, Any]) -> list[str]:
    lines = "-" if a.get("additions") is None else f"+{a['additions']} -{a['deletions']}"
    tokens = (a.get("input_tokens") or 0) + (a.get("output_tokens") or 0)
    cost = a.get("cost_usd")
    dur = a.get("duration_s")
    return [
        a["attempt"],
        a.get("session") or "-",
        text_cell(str(a.get("agent") or "-")),
        status_cell(a.get("status") or a["task"]),
        _check(a.get("check")),
        "-" if a.get("files") is None else str(a["files"]),
        lines,
        "-" if dur is None else f"{dur:.1f}s",
        str(tokens) if tokens else "-",
        "-" if cost is None else f"${cost:.4f}",
        _conflicts(a.get("conflicts")),
        "-" if a.get("score") is None else f"{a['score']:g}",
    ]


def _print(d: dict[str, Any]) -> None:
    g = d["group"]
    picked = g["spec"].get("picked")
    click.echo(
        f"group {printable(g['name'])} ({g['id']}): {g['state']}"
        + (f", picked attempt {picked}" if picked else "")
    )
    table(
        ["#", "SESSION", "AGENT", "STATUS", "CHECK", "FILES", "LINES", "TIME", "TOKENS",
         "COST", "CONFLICTS", "SCORE"],
        (_row(a) for a in d["attempts"]),
    )  # fmt: skip
    j = d.get("judge")
    if not j:
        return
    if j["state"] == "running":
        click.echo(f"judge ({j['agent']}, session {j['session']}): at work")
    elif j["state"] == "failed":
        click.echo(f"judge ({j['agent']}): no ranking: {printable(str(j.get('error')))}")
    elif j.get("ranking"):
        click.echo(f"judge ({j['agent']}), best first:")
        for r in j["ranking"]:
            click.echo(f"  {r['rank']}. attempt {r['attempt']} ({r['score']:g}/10): "
                       f"{printable(r['reason'])}")  # fmt: skip


@click.command()
@click.argument("group")
@click.option("--judge", "judge_agent", metavar="AGENT", help="Let AGENT rank the attempts.")
@click.option("--cmd", help="Program of the judge when --judge command.")
@click.option("--model", help="Model of the judge.")
@click.option(
    "--timeout",
    type=float,
    help="Seconds the judge may take before it counts as failed (default: 600).",
)
@click.option("--json", "as_json", is_flag=True)
def compare(
    group: str,
    judge_agent: str | None,
    cmd: str | None,
    model: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """One row per attempt of GROUP: status, check, files and lines changed, time, tokens,
    cost, conflicts forecast with live work outside the group (and with the base), and
    the judge's score.

    With --judge AGENT, one more session of AGENT reads the attempts' diffs and check
    output (read-only: its own worktree is discarded afterwards) and ranks them; the
    answer is validated, and a malformed answer or a timeout is an error, not a ranking.
    """
    from parallel_agents.cmdline import split_cmd
    from parallel_agents.errors import PAError

    cl = client()
    cl.refresh()
    if judge_agent:
        argv = split_cmd(cmd) if cmd is not None else None
        d = cl.judge(group, judge_agent, cmd=argv, model=model, timeout=timeout)
        limit = float(d["judge"]["timeout"]) + 120.0  # the server stops it past its timeout
        deadline = time.monotonic() + limit
        delay = 0.05
        while d["judge"]["state"] == "running" and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(0.5, delay * 1.5)
            cl.refresh()
            d = cl.compare(group)
    else:
        d = cl.compare(group)
    if as_json:
        emit_json(d)
    else:
        _print(d)
    j = d.get("judge") or {}
    if judge_agent and j.get("state") != "done":
        raise PAError(
            j.get("error") or f"the judge ({judge_agent}) gave no answer in time",
            hint=f"see what it said: pa logs {j.get('session')}" if j.get("session") else None,
        )


@click.command()
@click.argument("group")
@click.argument("attempt")
@click.option("--no-merge", is_flag=True, help="Only mark ATTEMPT as the winner; merge later.")
@click.option(
    "--strategy",
    type=click.Choice(["merge", "squash", "rebase"]),
    help="Merge strategy (default: setting merge.strategy).",
)
@click.option("--into", help="Branch to merge into (default: the attempts' base).")
@click.option("--json", "as_json", is_flag=True)
def pick(
    group: str, attempt: str, no_merge: bool, strategy: str | None, into: str | None, as_json: bool
) -> None:
    """Pick ATTEMPT of GROUP: merge it through the merge queue (or with --no-merge only
    mark it) and discard the other attempts (archived: `pa restore ID` brings one back).
    Nothing is discarded when the merge does not go through."""
    cl = client()
    cl.refresh()
    d = cl.pick(group, attempt, merge=not no_merge, strategy=strategy, into=into)
    if as_json:
        emit_json(d)
        return
    p = d["picked"]
    m = d.get("merge")
    if m:
        item = m["items"][0]
        where = f"merged into {m['target_branch']}" + (
            f" at {str(item.get('commit'))[:10]}" if item.get("commit") else ""
        )
    else:
        where = "marked as the winner (not merged)" if not p["merged"] else "already merged"
    click.echo(f"picked attempt {p['attempt']} ({p['session']}): {where}")
    for x in d["discarded"]:
        click.echo(
            f"discarded attempt {x['attempt']} ({x['session']}): archived in {x['archive']};"
            f" undo: pa restore {x['session']}"
        )
    for e in d["errors"]:
        click.echo(
            f"error: attempt {e['attempt']} ({e['session']}) was not discarded: {e['error']}",
            err=True,
        )
    if d["errors"]:
        raise SystemExit(1)

"""Operations commands: `pa doctor`, `pa pool status|fill|clear`, `pa demo` and
`pa dev model-server`.

Imports stay inside the commands: `pa pool status` does not pay for the doctor.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from parallel_agents.cli._group import PAGroup, open_app
from parallel_agents.cli._output import emit_json, tty
from parallel_agents.errors import PAError

if TYPE_CHECKING:
    from parallel_agents.models import Repo
    from parallel_agents.sessions.orchestrator import App


def _repos(app: App, ref: str | None) -> list[Repo]:
    if ref:
        return [app.find_repo(ref, register=False)]
    return app.store.repos()


def _rebuild(app: App) -> list[Any]:
    """`pa doctor --rebuild`, as findings: one per session folder without a row."""
    from parallel_agents.ops.doctor import Finding
    from parallel_agents.ops.rebuild import rebuild

    out = []
    for r in rebuild(app):
        f = Finding(
            "rebuilt_session",
            r.session,
            f"re-created from its folder and worktree: {r.turns} turn(s),"
            f" {r.checkpoints} checkpoint(s)"
            if r.error is None
            else f"not rebuilt: {r.error}",
            repo=r.repo,
            fix="re-create its row",
            repaired=r.error is None,
        )
        f.problem = r.error is None  # a folder with nothing to rebuild is information
        out.append(f)
    return out


@click.command()
@click.option("--repair", is_flag=True, help="Fix what can be fixed (archiving work first).")
@click.option(
    "--grace",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds a session may sit in `starting` before it counts as stuck.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also list what is fine but notable.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="First re-create rows for sessions that have a folder and a worktree but no row"
    " in pa.db (after it was lost or emptied): idle, turns and checkpoints from their"
    " folders and refs; prompts only where recorded, no event history.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(repair: bool, grace: float, verbose: bool, rebuild: bool, as_json: bool) -> None:
    """Find (and with --repair fix) leftovers of crashes: orphan worktrees and
    branches, stuck sessions, dead processes, missing checkpoints, stale files.

    Never touches a worktree another PA_HOME owns (a shared worktree_root) or one a
    live process works in. A damaged pa.db, or one written by a newer pa, is reported
    (with the newest backup under $PA_HOME/backups/) and nothing is repaired. Session
    folders without rows in pa.db ("state without a database") are reported, and then
    --repair leaves every worktree and branch alone.

    An interrupted `pa discard` is finished from its complete archive. Orphan
    worktrees are archived in full (ignored files, staging area and nested repos too)
    under refs/pa/archive/orphan-NAME; `pa restore ID` (or `pa restore ID --archive
    REF`) brings such an archive back.

    Processes still running for a session that is not (started by its agent, or
    working in its worktree) are listed as stray_process; --repair ends only those
    pa started, never someone's shell or editor.

    Exit code 0 when nothing is left to fix, 1 otherwise.
    """
    from parallel_agents.ops import doctor as doc
    from parallel_agents.store import DatabaseDamaged, DatabaseTooNew

    try:
        app = open_app()
    except (DatabaseDamaged, DatabaseTooNew) as e:
        from parallel_agents.config import pa_home

        rep = doc.check_unopenable(pa_home(), e)
    else:
        try:
            rebuilt = _rebuild(app) if rebuild else []
            rep = doc.check(app, repair=repair, grace=grace)
            rep.findings[:0] = rebuilt
        finally:
            app.close()
    if as_json:
        emit_json(rep.to_json())
    else:
        shown = [f for f in rep.findings if f.problem or verbose]
        if not rep.problems:
            click.echo("all good: nothing to repair")
        for f in shown:
            if not f.problem:
                mark = "info"
            elif f.repaired:
                mark = "fixed"
            elif f.error:
                mark = "FAILED"
            else:
                mark = "found"
            where = f" [{f.repo}]" if f.repo else ""
            click.echo(f"{mark:6} {f.kind}{where} {f.subject}: {f.detail}")
            if f.fix and f.problem and not f.repaired:
                verb = "could not" if f.error else ("will" if repair else "--repair would")
                click.echo(f"       {verb}: {f.fix}")
            elif f.repaired and f.fix:
                click.echo(f"       {f.fix}")
            if f.error:
                click.echo(f"       error: {f.error}")
        if rep.unresolved and not repair:
            click.echo(f"{len(rep.unresolved)} problem(s); run `pa doctor --repair`")
    sys.exit(0 if rep.ok else 1)

@click.group(cls=PAGroup)
def pool() -> None:
    """The warm worktree pool, on for repos a session was started in (settings:
    pool.size, pool.max, pool.disk_budget, pool.min_free, pool.background,
    pool.refill_every)."""


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if x < 1024:
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} TiB"


_WHY = {
    "size": "",
    "max": ", capped by pool.max",
    "budget": ", capped by pool.disk_budget",
    "disk": ", disk short (pool.min_free)",
    "no estimate": "",
    "off": "",
}


@pool.command("status")
@click.option("--repo", "repo_ref", help="Only this repo.")
@click.option("--json", "as_json", is_flag=True)
def pool_status(repo_ref: str | None, as_json: bool) -> None:
    """Warm worktrees per repo, what they cost on disk (estimated), the budget."""
    from parallel_agents.git import pool as pl

    app = open_app()
    try:
        rows = [pl.status(app.settings, r) for r in _repos(app, repo_ref)]
    finally:
        app.close()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no repos registered")
    for r in rows:
        if r["filling"]:
            state = "filling"
        elif not r["size"]:
            state = "off"
        elif not r["used"]:
            state = "unused (fills after the first session)"
        else:
            state = "on" + _WHY.get(str(r["limit"]), "")
        click.echo(
            f"{r['repo']}: {r['ready']}/{r['want']} ready at {str(r['base'])[:10]}"
            f", {_bytes(r['bytes'])} on disk ({_bytes(r['entry_bytes'])} each)"
            f", {r['stale']} stale, {r['unready']} unfinished, {state}"
        )
    if rows:
        r = rows[0]
        click.echo(
            f"all pools: {_bytes(r['held_bytes'])} of a {_bytes(r['budget_bytes'])} budget"
            f" ({r['disk_budget']})"
            f"; {_bytes(r['free_bytes'])} free, floor {_bytes(r['floor_bytes'])}"
            f"; at most {r['size']} per repo, {r['max']} in all"
        )

@pool.command("fill")
@click.option("--repo", "repo_ref", help="Only this repo.")
@click.option("--size", type=int, help="Fill to this many instead of pool.size.")
@click.option("--json", "as_json", is_flag=True)
def pool_fill(repo_ref: str | None, size: int | None, as_json: bool) -> None:
    """Create warm worktrees up to what the budget allows (and drop stale ones) now; the
    repos filled count as used. --size ignores the budget, never the free-space floor."""
    from parallel_agents.git import pool as pl
    from parallel_agents.git import pool_budget

    app = open_app()
    try:
        reps = []
        for repo in _repos(app, repo_ref):
            pool_budget.mark_used(app.settings, repo.name)
            reps.append(pl.fill(app.settings, repo, target=size))
    finally:
        app.close()
    if as_json:
        emit_json([r.to_json() for r in reps])
    else:
        for r in reps:
            click.echo(
                f"{r.repo}: {r.ready} ready (created {r.created}, removed {r.discarded})"
                f" in {r.seconds:.1f}s" + (f"; {r.limit}" if r.limit not in ("", "size") else "")
            )
            if r.skipped:
                click.echo(f"  {r.skipped} not created: the disk is short (pool.min_free)")
            for e in r.errors:
                click.echo(f"  error: {e}", err=True)
    if any(r.errors for r in reps):
        sys.exit(1)

@pool.command("clear")
@click.option("--repo", "repo_ref", help="Only this repo.")
@click.option("--json", "as_json", is_flag=True)
def pool_clear(repo_ref: str | None, as_json: bool) -> None:
    """Remove every warm worktree (dirty ones are archived first); the background fills a
    repo's pool again after its next session starts."""
    from parallel_agents.git import pool as pl

    app = open_app()
    try:
        reps = [pl.clear(app.settings, r) for r in _repos(app, repo_ref)]
    finally:
        app.close()
    if as_json:
        emit_json([r.to_json() for r in reps])
    else:
        for r in reps:
            click.echo(f"{r.repo}: removed {r.discarded}")


@click.command()
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

    app = open_app()
    echo = (lambda _m: None) if as_json else click.echo
    res = run_demo(app, agent=agent, count=count, directory=directory, echo=echo, live=tty())
    if as_json:
        emit_json(res)


@click.group(cls=PAGroup)
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


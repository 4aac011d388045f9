"""Review and merge commands: `pa diff`, `check`, `conflicts`, `rollback`, `merge`, `pr`,
`discard`, `restore`."""

from __future__ import annotations

import sys
from typing import Any

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import emit_json, table


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


@click.command(
    help="Remove a session's worktree and branch, archiving its final state first under a new "
    "refs/pa/archive/<id> ref (an existing archive is never overwritten): commits, "
    "uncommitted, untracked and ignored files, the staging area, empty folders, and nested "
    "repositories (moved whole next to the archive, in .git/pa-archive/). Not kept: caches "
    "such as node_modules, .venv, __pycache__ and ignored files over 50 MB (listed in the "
    "output). If it is interrupted, run it again or `pa doctor --repair`: both finish it "
    "from the complete archive. Undo with `pa restore ID`."
)
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True)
def discard(session_id: str, as_json: bool) -> None:
    cl = client()
    cl.refresh()
    d = cl.discard(session_id)
    if as_json:
        emit_json(d)
    else:
        click.echo(_discarded(d))


@click.command()
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
    cl = client()
    cl.refresh()
    d = cl.restore(session_id, archive_ref)
    if as_json:
        emit_json(d)
        return
    click.echo(f"restored {d['id']} at {d['worktree']} on {d['branch']}")
    for n in d.get("notes") or []:
        click.echo(f"note: {n}")


@click.command()
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
    cl = client()
    cl.refresh()
    if as_json:
        emit_json(cl.diff_json(session_id, turn))
        return
    for chunk in cl.diff_text(session_id, turn, stat=stat, name_only=name_only):
        sys.stdout.write(chunk)
    sys.stdout.flush()


@click.command()
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
    cl = client()
    cl.refresh()
    res = cl.rollback(session_id, turn)
    if as_json:
        emit_json(res)
    else:
        click.echo(
            f"{res['session'] if isinstance(res['session'], str) else res['session']['id']}: "
            f"worktree restored to turn {turn} ({res['commit'][:10]}); "
            f"the previous state is kept at {res['undo_ref']}"
        )
        if res.get("note"):
            click.echo(f"note: {res['note']}")


@click.command()
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

    cl = client()
    cl.refresh()
    limit = int(load_settings().get("check.parallel") or 2)
    with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:
        results = list(pool.map(lambda sid: cl.check(sid, command, timeout), session_ids))
    if as_json:
        emit_json(results)
    else:
        for r in results:
            verdict = "passed" if r["ok"] else ("timed out" if r["timed_out"] else "failed")
            click.echo(f"{r['session_id']}  check {verdict} in {r['duration_s']:.1f}s")
            if not r["ok"]:
                click.echo(r["output_tail"].rstrip()[-1500:])
    if not all(r["ok"] for r in results):
        sys.exit(1)


@click.command()
@click.option("--repo", "repo_ref", help="Only this repo.")
@click.option("--json", "as_json", is_flag=True)
def conflicts(repo_ref: str | None, as_json: bool) -> None:
    """Forecast: does each live session merge cleanly, and which pairs conflict?

    A repository that is missing (moved or deleted) is skipped and flagged; the others are
    still forecast.
    """
    cl = client()
    cl.refresh()
    fc = cl.conflicts(repo_ref)
    if as_json:
        emit_json(fc)
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
    table(["SESSION", "REPO", "WITH BASE", "CONFLICTS WITH"], rows)
    for p in fc["pairs"]:
        click.echo(f"{p['a']} × {p['b']}: {', '.join(p['paths'])}")


@click.command()
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
    cl = client()
    cl.refresh()
    rep = cl.merge(
        list(session_ids),
        strategy=strategy,
        into=into,
        message=message,
        fix_conflicts=fix_conflicts,
        force=force,
    )
    if as_json:
        emit_json(rep)
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


@click.command()
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
    cl = client()
    res = cl.pr(session_id, draft)
    if as_json:
        emit_json(res)
    else:
        click.echo(res["message"])
        for note in res["notes"]:
            click.echo(f"note: {note}")

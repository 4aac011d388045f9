"""`pa repo add|ls|move|rm`: the repositories pa knows."""

from __future__ import annotations

from pathlib import Path

import click

from parallel_agents.cli._group import PAGroup, client
from parallel_agents.cli._output import emit_json, table


@click.group(cls=PAGroup)
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
    r = client().repo_add(path, name, base)
    if as_json:
        emit_json(r)
    else:
        click.echo(f"registered {r['name']} ({r['path']})")


@repo.command("ls")
@click.option("--json", "as_json", is_flag=True)
def repo_ls(as_json: bool) -> None:
    """List registered repositories."""
    repos = client().repo_ls()
    if as_json:
        emit_json(repos)
        return
    if not repos:
        click.echo("no repos registered; add one with `pa repo add PATH`")
        return
    table(
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
    res = client().repo_move(name, new_path)
    if as_json:
        emit_json(res)
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
    r = client().repo_rm(name)
    if as_json:
        emit_json(r)
    else:
        click.echo(f"unregistered {r['name']}")

"""How `pa --help` and every command's help read: commands grouped by what they are for,
a one-line summary that is never cut off, an example for each command, and defaults.

Kept apart from the commands so their modules stay as they are: the root group calls
``dress(name, command)`` when it loads a command, and ``format_sections`` for `pa --help`.
Only plain data and click here: `pa ls` imports it at start.
"""

from __future__ import annotations

import click

# Sections of `pa --help`, in reading order: (title, commands, an example for the section).
# A command missing here is listed under "Other commands" rather than hidden.
SECTIONS: list[tuple[str, tuple[str, ...], str]] = [
    ("Start here", ("demo", "repo"), "pa demo      # three agents fix a sample repo, offline"),
    (
        "Sessions",
        ("new", "ls", "show", "logs", "wait", "send", "stop", "rename", "attach"),
        'pa new "add a --verbose flag to the CLI" --agent claude',
    ),
    (
        "Review & merge",
        ("diff", "check", "conflicts", "rollback", "merge", "pr", "discard", "restore", "review"),
        "pa diff ID --stat && pa merge ID",
    ),
    (
        "Workspaces",
        ("run", "shell", "open", "pair"),
        "pa run ID      # the repo's run script, on the session's ports",
    ),
    (
        "Best of N",
        ("compare", "pick", "groups"),
        'pa new "fix the login bug" --attempts 3 --agent claude,codex',
    ),
    ("Plans", ("plan",), "pa plan run plan.toml   # tasks with dependencies, run in order"),
    (
        "Routines",
        ("routine", "inbox"),
        'pa routine add nightly --prompt "bump deps" --cron "0 3 * * *"',
    ),
    (
        "Map-reduce",
        ("map", "reduce"),
        "pa map --template 'fix {item}' --items bugs.txt && pa reduce map-1a2b3c4d",
    ),
    (
        "Server & dashboard",
        ("up", "serve", "server", "watch", "mcp", "runtime"),
        "pa up      # open the dashboard",
    ),
    ("Maintenance", ("doctor", "pool", "dev", "hook"), "pa doctor --repair"),
]

# One line per command in the listings (click would cut the docstring's first sentence).
SHORT: dict[str, str] = {
    "repo": "Register, list, move and remove repositories.",
    "repo add": "Register a git repository (default: the current one).",
    "repo ls": "List registered repositories.",
    "repo move": "Re-point a moved repository and re-link its worktrees.",
    "repo rm": "Unregister a repository (its files are not touched).",
    "new": "Start an agent on PROMPT in a new worktree and branch.",
    "ls": "List live sessions (--all: merged and discarded too).",
    "show": "Details of one session: status, branch, worktree, turns.",
    "logs": "Print a session's events; -f keeps following.",
    "wait": "Wait until sessions stop working; exit 1 if one failed.",
    "send": "Send a follow-up: the next turn, in the same worktree.",
    "stop": "Stop a session's agent (interrupt, terminate, then kill).",
    "rename": "Give a session a new title (the branch keeps its name).",
    "attach": "Attach this terminal to an interactive session's TUI.",
    "shell": "A shell in a session's worktree (any session), in pa's tmux.",
    "open": "Open a session's worktree in your editor (VS Code, Zed, …).",
    "diff": "What a session changed against its base (or in one turn).",
    "check": "Run the repo's check command in sessions' worktrees.",
    "conflicts": "Forecast conflicts between sessions and with their base.",
    "rollback": "Put a worktree back to the end of a turn (undoable).",
    "merge": "Merge sessions, in order, onto the target branch (a queue).",
    "pr": "Push a session's branch and open a pull request (gh).",
    "discard": "Archive a session, then remove its worktree and branch.",
    "restore": "Bring a discarded session back from its archive.",
    "review": "A reviewer agent's line comments on a diff; send them on.",
    "compare": "Best-of-N: the attempts of a group side by side (--judge ranks them).",
    "pick": "Best-of-N: merge (or mark) one attempt, discard the others.",
    "groups": "List groups of sessions: attempts, maps, plans.",
    "up": "Start the server if needed and open the web dashboard.",
    "serve": "Run the server in the foreground.",
    "server": "Start, stop and inspect the background server.",
    "server start": "Start the server in the background and wait until it answers.",
    "server stop": "Stop the background server (agents keep running).",
    "server status": "Pid, URL, uptime and a one-time login link of the server.",
    "watch": "Print sessions that need you, as it happens.",
    "doctor": "Find (and with --repair fix) leftovers of crashes.",
    "pool": "The warm worktree pool: status, fill, clear.",
    "pool status": "Warm worktrees per repo: ready, stale, being filled.",
    "pool fill": "Create warm worktrees up to pool.size now.",
    "pool clear": "Remove every warm worktree (dirty ones are archived first).",
    "dev": "Tools for testing pa and your own agent setups.",
    "dev model-server": "Run the scripted model server in the foreground.",
    "demo": "Watch real agents fix a sample repo in parallel, offline.",
    "hook": "Internal: where an interactive agent's hooks report status.",
    # issue 15 §1: plans
    "plan": "Plans: a file of tasks with dependencies, run as sessions in order.",
    "plan run": "Check a plan file and start its tasks as they become ready.",
    "plan ls": "List plans and how many of their tasks are in each state.",
    "plan show": "A plan's tasks: state, session, check, merged, why one waits.",
    "plan stop": "Start no more tasks of a plan and stop the ones at work.",
    "plan resume": "Continue a stopped or interrupted plan; nothing starts twice.",
    "plan import": "Make a plan file from a ccpm epic folder or GitHub issues (gh).",
    "map": "Start one session per item of a list, all under one map group.",
    "map show": "A map group's report: each item's state, outcome, diff size, check.",
    "map ls": "List map groups with their items counted by state.",
    "map resume": "Start the items pa stopped before starting (none twice).",
    "reduce": "Merge a map group's successful items and start a reducer on them.",
    "pair": "Show a session's files in your main checkout, live; --stop: put it back.",
    "run": "Start (--stop: end) a session's run script, on its own ports.",  # issue 16 §1
    # issue 17: routines
    "routine": "Routines: sessions started on a schedule (--cron, --every) or over HTTP.",
    "routine add": "Add a routine: a prompt, an agent, a repo and its triggers.",
    "routine ls": "List routines: triggers, next run, last result.",
    "routine show": "A routine: triggers, policies, next run, last runs.",
    "routine pause": "Start no runs of a routine until it is resumed.",
    "routine resume": "Run a paused routine on its schedule again, from now on.",
    "routine rm": "Remove a routine (its runs' sessions stay).",
    "routine run": "Start a run of a routine now, whatever its schedule.",
    "routine history": "A routine's runs, newest first: due time, reason, state, session.",
    "routine token": "A new token for a routine's HTTP trigger (--rotate); the old one stops.",
    "routine calls": "Calls to a routine's HTTP trigger: when, from where, answer, run.",
    "inbox": "Routine runs waiting unread, newest first: status, cost, diff size.",
    "inbox read": "Mark routine runs read (by session, or --all): they leave the inbox.",
    "mcp": "Serve pa's tools to an agent over MCP (stdio), so it can lead sessions.",  # issue 18
    # issue 19: where sessions run
    "runtime": "Where sessions run: the Ray cluster's nodes, slots and agent CLIs.",
    "runtime nodes": "List Ray nodes: slots free/total, agent CLIs and versions, sessions.",
}

# An example for every command (tests/test_help.py holds every command to one).
EXAMPLES: dict[str, list[str]] = {
    "repo": ["pa repo add ~/src/app --name app"],
    "repo add": ["pa repo add ~/src/app --name app --base main"],
    "repo ls": ["pa repo ls --json"],
    "repo move": ["pa repo move app ~/code/app"],
    "repo rm": ["pa repo rm app"],
    "new": [
        'pa new "fix the flaky test in tests/test_api.py" --agent claude',
        "pa new - --agent codex --repo app < task.md",
        'pa new "finish the tests" --from-branch my-feature   # or --from-pr 7, --from-issue 12',
    ],
    "ls": ["pa ls --status needs_input"],
    "show": ["pa show 3f2a9c1e"],
    "logs": ["pa logs -f 3f2a9c1e"],
    "wait": ["pa wait 3f2a9c1e 7b01d4aa --timeout 600"],
    "send": ['pa send 3f2a9c1e "also update the README"'],
    "stop": ["pa stop 3f2a9c1e"],
    "rename": ['pa rename 3f2a9c1e "login: fix the redirect loop"'],
    "attach": ["pa attach 3f2a9c1e        # detach with Ctrl-b d"],
    "shell": ["pa shell 3f2a9c1e         # detach with Ctrl-b d; --kill ends it"],
    "open": ["pa open 3f2a9c1e --editor zed", "pa open 3f2a9c1e --print"],
    "diff": ["pa diff 3f2a9c1e --stat", "pa diff 3f2a9c1e --turn 2"],
    "check": ['pa check 3f2a9c1e 7b01d4aa --check "pytest -q"'],
    "conflicts": ["pa conflicts --repo app"],
    "rollback": ["pa rollback 3f2a9c1e --turn 1"],
    "merge": ["pa merge 3f2a9c1e 7b01d4aa --strategy squash", "pa merge 7b01d4aa --fix-conflicts"],
    "pr": ["pa pr 3f2a9c1e --draft"],
    "discard": ["pa discard 3f2a9c1e        # undo: pa restore 3f2a9c1e"],
    "restore": ["pa restore 3f2a9c1e"],
    "run": ["pa run 3f2a9c1e", "pa run 3f2a9c1e --stop"],
    "mcp": ["claude mcp add pa -- pa mcp"],  # issue 18
    "review": ["pa review 3f2a9c1e --agent claude", "pa review 3f2a9c1e --send --only 4,6"],
    "compare": ["pa compare attempts-1a2b3c4d --judge claude"],
    "pick": ["pa pick attempts-1a2b3c4d 2"],
    "groups": ["pa groups --kind attempts"],
    "up": ["pa up --no-open"],
    "serve": ["pa serve --port 7400 --log-level debug"],
    "server": ["pa server status"],
    "server start": ["pa server start --port 0"],
    "server stop": ["pa server stop"],
    "server status": ["pa server status --json"],
    "watch": ["pa watch"],
    "doctor": ["pa doctor --repair"],
    "pool": ["pa pool fill --repo app --size 2"],
    "pool status": ["pa pool status --repo app"],
    "pool fill": ["pa pool fill --repo app --size 2"],
    "pool clear": ["pa pool clear --repo app"],
    "dev": ["pa dev model-server --script turns.yaml --port 8765"],
    "dev model-server": ["pa dev model-server --script turns.yaml --port 8765"],
    "demo": ["pa demo --agent claude --sessions 2"],
    "hook": ["pa hook 3f2a9c1e Stop < payload.json   # what Claude Code's hooks run"],
    # issue 15 §1: plans
    "plan": ["pa plan run login.toml && pa plan show login"],
    "plan run": ["pa plan run login.toml --name login-2"],
    "routine": ["pa routine ls"],
    "routine add": [
        'pa routine add nightly --prompt "bump deps on {branch}" --cron "0 3 * * *" --tz UTC',
        'pa routine add flaky --prompt "hunt a flaky test" --every 6h --overlap queue',
        'pa routine add ci --prompt "fix what broke at {commit}" --on-push main --auto-merge',
        'pa routine add triage --prompt "triage this report: {text}" --api',
    ],
    "routine ls": ["pa routine ls --json"],
    "routine show": ["pa routine show nightly"],
    "routine pause": ["pa routine pause nightly"],
    "routine resume": ["pa routine resume nightly"],
    "routine rm": ["pa routine rm nightly"],
    "routine run": ["pa routine run nightly"],
    "routine history": ["pa routine history nightly --json"],
    "routine token": ["pa routine token triage --rotate"],
    "routine calls": ["pa routine calls triage --json"],
    "inbox": ["pa inbox", "pa inbox --all --routine nightly --json"],
    "inbox read": ["pa inbox read 3f2a9c1e", "pa inbox read --all --routine nightly"],
    "plan ls": ["pa plan ls --json"],
    "plan show": ["pa plan show login"],
    "plan stop": ["pa plan stop login"],
    "plan resume": ["pa plan resume login"],
    "plan import": [
        "pa plan import .claude/epics/login --out login.toml --auto-merge",
        "pa plan import --gh-label ready --repo octo/app --out ready.toml",
    ],
    "map": [
        "pa map --template 'fix the lint errors in {item}' --items files.txt --name lint",
        "pa map --template 'bump {pkg} to {version}' --items - --agent codex < bumps.jsonl",
    ],
    "map show": ["pa map show lint"],
    "map ls": ["pa map ls --json"],
    "map resume": ["pa map resume lint"],
    "reduce": ["pa reduce lint --agent claude --prompt 'keep the public API as it is'"],
    "pair": ["pa pair 1a2b3c4d", "pa pair status --json", "pa pair --stop 1a2b3c4d"],
    "runtime": ["pa runtime nodes"],
    "runtime nodes": ["pa runtime nodes", "pa runtime nodes --refresh --json"],
}


def _walk(cmd: click.Command, path: str) -> list[tuple[str, click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                out.extend(_walk(sub, f"{path} {name}"))
    return out


def dress(name: str, command: click.Command) -> None:
    """Give a top-level command and its sub-commands their summary line, example and
    shown defaults (``name`` is the command's name under `pa`)."""
    for path, cmd in _walk(command, name):
        if cmd.short_help is None and path in SHORT:
            cmd.short_help = SHORT[path]
        lines = EXAMPLES.get(path)
        if lines and "Example" not in (cmd.epilog or ""):
            title = "Example:" if len(lines) == 1 else "Examples:"
            block = "\b\n" + title + "\n" + "\n".join(f"  {line}" for line in lines)
            cmd.epilog = f"{cmd.epilog}\n\n{block}" if cmd.epilog else block
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name == "as_json" and not p.help:
                p.help = "Print the result as JSON."
            # An option with a real default says what it is (flags say it by being off).
            if (
                isinstance(p, click.Option)
                and not p.is_flag
                and p.show_default is None
                and p.default not in (None, (), [])
                and not str(p.default).startswith("Sentinel.")
            ):
                p.show_default = True


def format_sections(group: click.Group, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """`pa --help`'s command list: one section per purpose, each with an example."""
    visible = {
        name: cmd
        for name in group.list_commands(ctx)
        if (cmd := group.get_command(ctx, name)) is not None and not cmd.hidden
    }
    placed: set[str] = set()
    sections: list[tuple[str, list[str], str | None]] = []
    for title, names, example in SECTIONS:
        here = [n for n in names if n in visible]
        placed.update(here)
        if here:
            sections.append((title, here, example))
    rest = [n for n in visible if n not in placed]
    if rest:
        sections.append(("Other commands", rest, None))
    for heading, listed, eg in sections:
        rows = [(n, visible[n].get_short_help_str(limit=200)) for n in listed]
        with formatter.section(heading):
            formatter.write_dl(rows)
            if eg:  # written as is: wrapping would eat the example's spacing
                formatter.write(f"{'':>{formatter.current_indent}}e.g. {eg}\n")

"""The `pa` command line: the root group and where each command lives.

A command's module is imported when the command runs (``pa --help`` imports them all),
so `pa ls` loads neither the server's nor tmux's commands. Each family module defines
its click commands; cli/_group.py holds what they share, cli/_output.py how they print,
cli/help.py how their help reads.
"""

from __future__ import annotations

import click

from parallel_agents.cli._group import LazyGroup

# Command name -> "module:attribute" of its click command (a group for repo, server, ...).
COMMANDS: dict[str, str] = {
    "repo": "parallel_agents.cli.repos:repo",
    "new": "parallel_agents.cli.sessions:new",
    "ls": "parallel_agents.cli.sessions:ls",
    "show": "parallel_agents.cli.sessions:show",
    "logs": "parallel_agents.cli.sessions:logs",
    "wait": "parallel_agents.cli.sessions:wait",
    "send": "parallel_agents.cli.sessions:send",
    "stop": "parallel_agents.cli.sessions:stop",
    "rename": "parallel_agents.cli.sessions:rename",
    "attach": "parallel_agents.cli.interactive:attach",
    "hook": "parallel_agents.cli.interactive:hook",
    "shell": "parallel_agents.cli.shell:shell",  # issue 16 §2
    "open": "parallel_agents.cli.shell:open_cmd",  # issue 16 §3
    "diff": "parallel_agents.cli.review:diff",
    "check": "parallel_agents.cli.review:check",
    "conflicts": "parallel_agents.cli.review:conflicts",
    "rollback": "parallel_agents.cli.review:rollback",
    "merge": "parallel_agents.cli.review:merge",
    "pr": "parallel_agents.cli.review:pr",
    "discard": "parallel_agents.cli.review:discard",
    "restore": "parallel_agents.cli.review:restore",
    "review": "parallel_agents.cli.reviewer:review",
    "compare": "parallel_agents.cli.groups:compare",
    "pick": "parallel_agents.cli.groups:pick",
    "groups": "parallel_agents.cli.groups:groups",
    "up": "parallel_agents.cli.web:up",
    "serve": "parallel_agents.cli.server:serve",
    "server": "parallel_agents.cli.server:server_group",
    "watch": "parallel_agents.cli.server:watch",
    "doctor": "parallel_agents.cli.ops:doctor",
    "pool": "parallel_agents.cli.ops:pool",
    "demo": "parallel_agents.cli.ops:demo",
    "dev": "parallel_agents.cli.ops:dev",
    "plan": "parallel_agents.cli.plans:plan",  # issue 15 §1
    "routine": "parallel_agents.cli.routines:routine",  # issue 17
    "inbox": "parallel_agents.cli.inbox:inbox",  # issue 17
    "map": "parallel_agents.cli.maps:map_group",
    "reduce": "parallel_agents.cli.maps:reduce",
    "pair": "parallel_agents.cli.pair:pair",  # issue 16 §5
    "run": "parallel_agents.cli.run:run",  # issue 16 §1
    "mcp": "parallel_agents.cli.mcp:mcp",  # issue 18
    "runtime": "parallel_agents.cli.runtime:runtime",  # issue 19
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="`pa COMMAND --help` shows a command's options, their defaults and an example.",
)
@click.version_option(package_name="parallel-agents", prog_name="pa")
def main() -> None:
    """Run many AI coding agents in parallel, each in its own git worktree.

    Commands talk to the pa server of this PA_HOME, starting it in the background when
    it is not running (PA_SERVER_AUTOSTART=0 or server.autostart = false: work in-process).
    """

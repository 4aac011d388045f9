"""Workspace commands (issue 16): `pa shell` (a terminal in a session's worktree) and
`pa open` (the worktree in the user's editor)."""

from __future__ import annotations

import os
import sys

import click

from parallel_agents.cli._output import emit_json


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("session_id")
@click.option("--kill", "kill_it", is_flag=True, help="End the session's shell.")
@click.option("--json", "as_json", is_flag=True, help="Start it, print where it is, no attach.")
def shell(session_id: str, kill_it: bool, as_json: bool) -> None:
    """Open a shell in a session's worktree (any session, headless too), in pa's own tmux.

    The shell is independent of the agent and keeps running when you detach (Ctrl-b d);
    `pa shell ID` again comes back to it, `exit` or `pa shell ID --kill` ends it, and
    discarding the session ends it too. It has $SHELL and the session's environment.
    """
    from parallel_agents.errors import UsageError
    from parallel_agents.sessions import shell as shell_mod
    from parallel_agents.sessions.orchestrator import App

    app = App.open()
    try:
        s = app.store.resolve_session(session_id)
        home = app.store.home
        if kill_it:
            ended = shell_mod.end(home, s.id)
            if as_json:
                emit_json({"id": s.id, "ended": ended})
            else:
                click.echo(f"ended the shell of {s.id}" if ended else f"{s.id} has no shell")
            return
        if not as_json and not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError(
                "pa shell needs a terminal (stdin and stdout are not a tty)",
                hint=f"`pa shell {s.id} --json` starts it without attaching",
            )
        size = os.get_terminal_size() if sys.stdout.isatty() else os.terminal_size((120, 40))
        tmux_name = shell_mod.ensure(app.store, s, size.columns, max(2, size.lines - 1))
        argv = shell_mod.attach_argv(home, s.id)
    finally:
        app.close()
    if as_json:
        emit_json({"id": s.id, "tmux_session": tmux_name, "worktree": s.worktree,
                   "attach": argv})  # fmt: skip
        return
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@click.command(name="open", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("session_id")
@click.option("--editor", metavar="EDITOR",
              help="code, cursor, zed, idea, pycharm, … or a command (default: the `editor` "
              "setting, else the first found, else $VISUAL/$EDITOR).")  # fmt: skip
@click.option("--print", "print_only", is_flag=True, help="Print the command, do not run it.")
@click.option("--json", "as_json", is_flag=True)
def open_cmd(session_id: str, editor: str | None, print_only: bool, as_json: bool) -> None:
    """Open a session's worktree in your editor.

    GUI editors (VS Code, Cursor, Zed, JetBrains) start detached; a terminal editor
    ($VISUAL/$EDITOR) runs here in the foreground. The worktree path is passed as one
    argument, never through a shell.
    """
    import shlex

    from parallel_agents.sessions import editor as editor_mod
    from parallel_agents.sessions import shell as shell_mod
    from parallel_agents.sessions.orchestrator import App

    app = App.open()
    try:
        s = app.store.resolve_session(session_id)
        wt = shell_mod.check_worktree(s)
        cmd = editor_mod.resolve(wt, editor or app.settings.editor)
    finally:
        app.close()
    if print_only:
        if as_json:
            emit_json({"id": s.id, "worktree": str(wt), **cmd.to_json(), "started": False})
        else:
            click.echo(shlex.join(cmd.argv))
        return
    code = editor_mod.launch(cmd, wt)
    if as_json:
        emit_json({"id": s.id, "worktree": str(wt), **cmd.to_json(), "started": True,
                   "exit_code": code})  # fmt: skip
    elif cmd.gui:
        click.echo(f"opened {wt} in {cmd.name}")
    if code:
        sys.exit(code)

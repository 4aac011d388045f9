"""The command groups of `pa` and what every command family shares.

``LazyGroup`` is the root group: it knows its commands as ``name -> "module:attribute"``
and imports a family's module only when one of its commands runs (or ``pa --help``
lists them all), so `pa ls` does not load the server, tmux or doctor commands.
``PAGroup`` turns pa's expected errors into a message and an exit code. ``client()``
is how a command reaches the server (or works in-process), ``open_app()`` the
orchestrator itself for the commands that need it directly.

Families (cli/repos.py, cli/sessions.py, ...) import this module and cli/_output.py,
never the package (cli/__init__.py) or each other.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from parallel_agents.cli.help import dress, format_sections
from parallel_agents.errors import PAError

if TYPE_CHECKING:
    from parallel_agents.client import Client
    from parallel_agents.sessions.orchestrator import App


def client() -> Client:
    """The server of this PA_HOME (started if allowed), else the same API in-process."""
    from parallel_agents.client import connect

    return connect()


def open_app() -> App:
    from parallel_agents.sessions.orchestrator import App

    return App.open()


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


class LazyGroup(PAGroup):
    """`pa` itself: commands imported on first use, listed by purpose (see cli/help.py).

    ``lazy_commands`` maps each command name to ``"package.module:attribute"``, the
    click command (or group) that module defines.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in self.lazy_commands:
            return cmd
        if cmd_name not in self._loaded:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            loaded = getattr(importlib.import_module(module), attribute)
            if not isinstance(loaded, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            dress(cmd_name, loaded)
            self._loaded[cmd_name] = loaded
        return self._loaded[cmd_name]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.NoSuchCommand as e:
            # click suggests names from ``self.commands``, which stays empty here: suggest
            # from every command instead ("Did you mean 'ls'?").
            raise click.NoSuchCommand(
                e.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_sections(self, ctx, formatter)


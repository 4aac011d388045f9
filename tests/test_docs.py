"""The README documents every command and every setting (and shows no stale ones)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from parallel_agents.cli import main
from parallel_agents.config import DEFAULTS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    out: list[str] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        full = f"{prefix}{name}"
        out.append(full)
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full + " "))
    return out


def _settings(d: dict[str, object], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in d.items():
        if isinstance(v, dict) and v and k not in ("per_agent", "repos"):
            out.extend(_settings(v, f"{prefix}{k}."))  # type: ignore[arg-type]
        else:
            out.append(f"{prefix}{k}")
    return out


def test_every_command_is_documented() -> None:
    missing = [c for c in _commands(main) if f"pa {c}" not in README]
    # Sub-commands may be documented in a combined form such as `pa server start|stop|status`.
    missing = [c for c in missing if not re.search(rf"pa {c.split()[0]}\b[^`]*{c.split()[-1]}", README)]
    assert missing == []


def test_every_setting_is_documented() -> None:
    missing = []
    for key in _settings(DEFAULTS):
        # An open table such as [agents.<name>] is documented by its pattern.
        documented = f"`{key}`" in README or f"`{key}.<" in README
        if not documented:
            missing.append(key)
    assert missing == []

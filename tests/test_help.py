"""Issue 12 item 6: help a person can learn from.

`pa --help` groups the commands by purpose, each group with an example, and cuts no
summary off; every command's --help ends with an example and shows its defaults.
"""

from __future__ import annotations

import re

import click
from click.testing import CliRunner

from parallel_agents.cli import main
from tests.conftest import pa

SECTIONS = ["Start here", "Sessions", "Review & merge", "Server & dashboard", "Maintenance"]


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        out.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, f"{prefix}{name} "))
    return out


def _option(out: str, opt: str) -> str:
    """The help of one option in a --help page."""
    opts = out[out.index("\nOptions:") :]
    return opts[opts.index(f"  {opt} ") :].split("\n  -", 1)[0]


def _help(path: str) -> str:
    res = CliRunner().invoke(main, [*path.split(), "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    return res.output


def test_top_level_help_groups_commands_with_an_example_each() -> None:
    """Issue 12 item 6: `pa --help` lists commands under sessions, review & merge, server
    and maintenance headings (not one alphabetical list), each heading with an example,
    and no summary is cut off with "..."."""
    p = pa("--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "..." not in out.split("\nOptions:", 1)[1]
    assert "\nCommands:" not in out
    starts = [out.index(f"\n{title}:\n") for title in SECTIONS]
    assert starts == sorted(starts)
    blocks = re.split(r"\n(?=\S[^\n]*:\n)", out)
    for title in SECTIONS:
        [block] = [b for b in blocks if b.startswith(f"{title}:\n")]
        assert "\n  e.g. pa " in block, block
    listed = set(re.findall(r"^  ([a-z-]+)  ", out, re.M))
    visible = {path for path, cmd in _commands(main) if " " not in path and not cmd.hidden}
    assert visible <= listed, visible - listed


def test_every_command_help_has_an_example() -> None:
    """Issue 12 item 6: every command's --help (sub-commands too) ends with an example
    that runs that command."""
    missing = []
    for path, cmd in _commands(main):
        if cmd.hidden:
            continue
        out = _help(path)
        m = re.search(r"\n  Examples?:\n((?:    .*\n?)+)", out)
        if m is None or f"pa {path.split()[0]}" not in m.group(1):
            missing.append(path)
    assert missing == []


def test_options_show_their_defaults() -> None:
    """Issue 12 item 6: an option with a default shows it ([default: …] or "(default: …)"
    in its help), and `pa new --help` names where the default agent comes from."""
    silent = []
    for path, cmd in _commands(main):
        if cmd.hidden:
            continue
        out = _help(path)
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.is_flag:
                continue
            has_default = p.default is not None and not str(p.default).startswith("Sentinel.")
            if has_default and "[default:" not in out:
                silent.append(f"{path} {p.opts[0]}")
    assert silent == []
    new = _help("new")
    assert "default_agent setting" in new
    for opt in ("--agent", "--model", "--base", "--title", "--timeout", "--repo"):
        assert "default" in _option(new, opt), opt
    for path, opt in (("wait", "--timeout"), ("check", "--timeout"), ("merge", "--strategy")):
        assert "default" in _option(_help(path), opt), (path, opt)


def test_subcommand_lists_are_not_cut_off() -> None:
    """Issue 12 item 6: the listings of `pa repo`, `pa server`, `pa pool` and `pa dev` show
    whole summaries (click cut them at 45 characters with "...")."""
    for group in ("repo", "server", "pool", "dev"):
        out = _help(group)
        assert "..." not in out.split("\nOptions:", 1)[1], out

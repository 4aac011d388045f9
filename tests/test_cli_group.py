"""Issue 13: `pa` is a lazy command group. A command's module is imported only when that
command runs (`pa --help` imports them all), the families never import each other or
the package, and the lazy map names real commands."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from parallel_agents.cli import COMMANDS, main

CLI = Path(__file__).resolve().parents[1] / "src" / "parallel_agents" / "cli"
FAMILIES = {"repos", "sessions", "review", "interactive", "ops", "server", "web"}
SHARED = {"_group", "_output", "help"}


def _families_loaded(*args: str) -> list[str]:
    """The command families a fresh `pa ARGS` process imports."""
    code = (
        "import json, sys\n"
        "from parallel_agents.cli import main\n"
        "try:\n"
        f"    main({list(args)!r}, prog_name='pa')\n"
        "except SystemExit:\n"
        "    pass\n"
        "mods = [m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('parallel_agents.cli.')]\n"
        "print(json.dumps(mods), file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(p.stderr.strip().splitlines()[-1])
    return sorted(set(loaded) & FAMILIES)


@pytest.mark.parametrize(
    ("args", "family"),
    [
        (["new", "--help"], "sessions"),
        (["ls", "--help"], "sessions"),
        (["repo", "ls", "--help"], "repos"),
        (["merge", "--help"], "review"),
        (["hook", "--help"], "interactive"),
        (["serve", "--help"], "server"),
        (["doctor", "--help"], "ops"),
    ],
)
def test_a_command_imports_only_its_own_family(args: list[str], family: str) -> None:
    assert _families_loaded(*args) == [family]


def test_the_top_level_help_lists_every_family() -> None:
    assert _families_loaded("--help") == sorted(FAMILIES)


def test_the_lazy_map_names_each_command_under_its_own_name() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        cmd = main.get_command(ctx, name)
        assert isinstance(cmd, click.Command), name
        assert cmd.name == name
        assert cmd is main.get_command(ctx, name)  # loaded (and dressed) once


def test_a_mistyped_command_is_still_suggested() -> None:
    res = CliRunner().invoke(main, ["lss"], prog_name="pa")
    assert res.exit_code == 2
    assert "No such command 'lss'. Did you mean 'ls'?" in res.output


def _cli_imports(path: Path) -> list[str]:
    """What a module in cli/ imports from cli/: a module's stem, or "" for the package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "parallel_agents.cli":
            subs = {p.stem for p in CLI.glob("*.py")}
            names = [
                f"{node.module}.{a.name}" if a.name in subs else node.module for a in node.names
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "parallel_agents.cli":
                out.append("")
            elif name.startswith("parallel_agents.cli."):
                out.append(name.split(".")[2])
    return out


def test_families_import_only_the_shared_modules() -> None:
    """A family imports cli/_group, cli/_output and cli/help at most: never the package
    (cli/__init__.py) and never another family, so no import cycle can form in cli/."""
    bad = [
        f"{path.name} imports {name or 'the cli package'}"
        for path in sorted(CLI.glob("*.py"))
        if path.stem != "__init__"
        for name in _cli_imports(path)
        if name not in SHARED
    ]
    assert bad == []

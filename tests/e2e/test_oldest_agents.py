"""The oldest supported Claude Code and Codex releases, end to end (issue 11 F.1).

pa supports a range of CLI releases per agent (``Agent.supported_versions``). The newest is
what scripts/install-agents.sh pins as ``claude``/``codex`` and test_pa_agents.py drives;
the oldest is installed beside it as ``claude-oldest``/``codex-oldest`` and runs the same
lifecycle here: a file written, a diff, a follow-up resumed in the CLI's own conversation,
and a refused API key that fails the turn with the CLI's words.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents import get_agent

from . import test_pa_agents as base
from .conftest import ModelServerFactory

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OLDEST = ("claude", "codex")


class OldestPaCli(base.PaCli):
    """`pa` whose ``[agents.<name>] binary`` is the oldest supported release."""

    def use(self, name: str, **settings: Any) -> None:
        binary = base.require_binary(f"{name}-oldest")
        self.agent_settings[name] = {"binary": str(binary), **settings}
        self.write_config()


@pytest.fixture
def oldest_cli(tmp_path: Path, work_repo: Path) -> Iterator[OldestPaCli]:
    cli = OldestPaCli(tmp=tmp_path, repo=work_repo, config=tmp_path / "pa-config.toml")
    cli.write_config()
    yield cli
    cli("server", "stop", check=False)


def installed_version(name: str) -> str:
    binary = base.require_binary(name)
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    found = re.search(r"\d+\.\d+\.\d+", out.stdout + out.stderr)
    assert found, out
    return found.group(0)


@pytest.mark.parametrize("name", OLDEST)
def test_installed_releases_are_the_ends_of_the_supported_range(name: str) -> None:
    """issue 11 F.1: what install-agents.sh installs is the range pa claims to support."""
    supported = get_agent(name).supported_versions
    assert supported is not None
    assert (installed_version(f"{name}-oldest"), installed_version(name)) == supported


@pytest.mark.parametrize("name", OLDEST)
def test_oldest_release_edits_diffs_and_resumes(
    name: str, oldest_cli: OldestPaCli, model_server: ModelServerFactory, work_repo: Path
) -> None:
    """issue 11 F.1: the oldest supported release runs a real turn and a resumed follow-up
    (Claude Code 2.1.197 only works with its prompt on a pipe)."""
    base.test_pa_session_edits_diffs_and_resumes(name, oldest_cli, model_server, work_repo)


@pytest.mark.parametrize("name", OLDEST)
def test_oldest_release_fails_with_the_cli_error_on_401(
    name: str, oldest_cli: OldestPaCli, model_server: ModelServerFactory, work_repo: Path
) -> None:
    """issue 11 F.1: with the oldest release too, a refused key fails the turn with the
    CLI's own error text."""
    base.test_pa_session_fails_with_the_cli_error_on_401(
        name, oldest_cli, model_server, work_repo
    )


def test_install_script_pins_the_supported_range() -> None:
    """issue 11 F.1: the versions pinned in scripts/install-agents.sh are the adapters'
    supported range (newest as claude/codex, oldest as claude-oldest/codex-oldest)."""
    text = (ROOT / "scripts" / "install-agents.sh").read_text(encoding="utf-8")
    pins = dict(re.findall(r"^([A-Z_]+_VERSION)=(\S+)", text, re.M))
    for name in OLDEST:
        lo, hi = get_agent(name).supported_versions or ("", "")
        assert pins[f"{name.upper()}_OLDEST_VERSION"] == lo
        assert pins[f"{name.upper()}_VERSION"] == hi

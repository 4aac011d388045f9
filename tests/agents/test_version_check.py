"""`--help` probing: once per installed binary (cached under PA_HOME), never in the real HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parallel_agents.agents.base import Agent, AgentVersionError


class Probe(Agent):
    name = "probe"
    required_flags = ("--json",)


def fake_cli(tmp_path: Path, help_text: str) -> Path:
    log = tmp_path / "calls.log"
    exe = tmp_path / "fake-cli"
    exe.write_text(
        "#!/bin/sh\n"
        f'echo "$HOME" >> {log}\n'
        f"printf '%s\\n' '{help_text}'\n"
    )
    exe.chmod(0o755)
    return exe


def test_probe_runs_once_per_binary_with_a_throwaway_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = fake_cli(tmp_path, "usage: fake [--json]")
    Probe().check_version(str(exe))
    Agent._checked.clear()  # as if a new `pa` process: only the disk cache remains
    Probe().check_version(str(exe))
    homes = (tmp_path / "calls.log").read_text().split()
    assert len(homes) == 1
    assert homes[0] != os.environ.get("HOME") and "pa-help-" in homes[0]
    assert not Path(homes[0]).exists(), "the throw-away HOME is removed"


def test_missing_flag_is_a_clear_error(tmp_path: Path) -> None:
    exe = fake_cli(tmp_path, "usage: fake [--text]")
    with pytest.raises(AgentVersionError, match="does not support --json"):
        Probe().check_version(str(exe))

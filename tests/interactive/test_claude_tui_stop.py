"""`pa stop` on the real Claude Code TUI while it waits for a permission (issue 11 F.3).

The session is stopped mid-turn: its turn is checkpointed, `pa doctor` stays clean, and
the tmux pane is gone at once (not at discard).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_agents.models import Status
from parallel_agents.runtime import tmux
from parallel_agents.testing import ScriptedModelServer
from parallel_agents.testing.agent_env import base_environ

from .conftest import ROOT, pa_cli, wait_for
from .test_claude_tui import status

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CLAUDE = ROOT / ".agents" / "bin" / "claude"
KEY = "sk-ant-test-tui-stop-0001"
SCRIPT = [
    {
        "match": "tui-stop",
        "turns": [
            {"say": "I'll create the file.", "write": {"path": "a.txt", "content": "a\n"}},
            {"text": "never reached"},
        ],
    }
]


def test_pa_stop_mid_turn_checkpoints_and_closes_the_real_claude_tui(
    repo: Path, pa_home: Path, tmp_path: Path
) -> None:
    """issue 11 F.3: `pa stop` on an --interactive Claude session that waits for a
    permission: turn checkpointed (doctor finds no missing_checkpoint), pane gone."""
    if not CLAUDE.exists():
        pytest.skip(f"{CLAUDE} is missing: run scripts/install-agents.sh to install Claude Code")
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    config = tmp_path / "pa.toml"
    config.write_text(
        "[agents.claude]\n"
        f"binary = {json.dumps(str(CLAUDE))}\n"
        'permission_mode = "default"\n'
        'model = "claude-sonnet-4-5"\n'
    )
    with ScriptedModelServer(SCRIPT) as server:
        env = {
            **base_environ(),
            "HOME": str(user_home),
            "PA_HOME": str(pa_home),
            "PA_CONFIG": str(config),
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": KEY,
            "IS_SANDBOX": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        made = pa_cli(
            "new", "--interactive", "--agent", "claude", "create a", "--json", env=env, cwd=repo
        )
        assert made.returncode == 0, made.stdout + made.stderr
        sid = json.loads(made.stdout)["id"]
        wait_for(lambda: status(pa_home, sid)[0] == Status.NEEDS_INPUT, 60, "needs_input")

        stopped = pa_cli("stop", sid, env=env, cwd=repo)
        assert stopped.returncode == 0, stopped.stderr
        assert status(pa_home, sid)[0] == Status.STOPPED
        assert tmux.pane(pa_home, sid) is None
        doctor = pa_cli("doctor", "--json", env=env, cwd=repo)
        found = json.loads(doctor.stdout)["findings"]
        assert [f for f in found if f["kind"] == "missing_checkpoint"] == [], found
        assert doctor.returncode == 0, doctor.stdout
        rollback = pa_cli("rollback", sid, "--turn", "1", "--json", env=env, cwd=repo)
        assert rollback.returncode == 0, rollback.stderr

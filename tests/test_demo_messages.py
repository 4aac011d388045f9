"""Issue 12 item 7: the scripted, no-AI demo shows no dollar cost and says each message once.

Runs the real `pa demo` (the mini-swe-agent CLI against pa's scripted model server).
The CLI prices the scripted tokens as if gpt-4o had answered; no money was spent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_agents.ops.demo import find_agent_bin
from tests.conftest import pa

FINAL = "Fixed calc.add: it now returns a + b."


@pytest.mark.skipif(find_agent_bin("mini") is None, reason="mini-swe-agent CLI not installed")
def test_scripted_demo_shows_no_cost_and_each_message_once(tmp_path: Path) -> None:
    """Issue 12 item 7: after `pa demo --sessions 1`, `pa ls` shows no cost ("-", it showed
    $0.01), `pa show` no cost line, `pa logs` no "$"; the demo and `pa logs` print the
    agent's final message once (its result repeats it). Tokens are still recorded."""
    p = pa("demo", "--sessions", "1", "--dir", str(tmp_path / "demo"), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    said = [x for x in p.stdout.splitlines() if x.split("  ")[-1] == FINAL]
    assert len(said) == 1, p.stdout

    [s] = json.loads(pa("ls", "--json", check=True).stdout)
    assert s["cost_usd"] == 0
    ls = pa("ls", check=True).stdout.splitlines()
    assert ls[1].split("\t")[ls[0].split("\t").index("COST")] == "-"
    show = pa("show", s["id"], check=True).stdout
    assert "cost" not in show and "$" not in show
    detail = json.loads(pa("show", s["id"], "--json", check=True).stdout)
    assert detail["turns"][0]["input_tokens"] > 0, "tokens are kept"
    logs = pa("logs", s["id"], check=True).stdout
    assert "$" not in logs.split(FINAL)[-1], "no cost on the usage line"
    assert FINAL in logs and f"result: {FINAL}" not in logs

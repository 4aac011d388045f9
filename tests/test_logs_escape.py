"""`pa logs` never hands an agent's terminal control sequences to the terminal (found while
fixing issue 11 G: titles were escaped in `pa show`/`pa ls`, but OSC and BEL from an agent's
output reached the terminal raw through `pa logs` and `pa logs --raw`)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok


def test_logs_print_control_sequences_from_agent_output_escaped(
    repo: Path, tmp_path: Path
) -> None:
    agent = script(tmp_path, "print('before\\x1b]0;owned\\x07after\\x9b2J done', flush=True)\n")
    sid = str(new_json("osc", "--cmd", agent, cwd=repo)["id"])
    assert wait_ok(sid).returncode == 0
    for extra in ([], ["--raw"]):
        p = pa("logs", sid, *extra, check=True)
        assert "before" in p.stdout and "after" in p.stdout, (extra, p.stdout)
        assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "\x9b" not in p.stdout
        assert "\\x1b]0;owned\\x07after" in p.stdout, (extra, p.stdout)

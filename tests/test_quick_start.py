"""The README's Quick start, typed line by line into one shell (issue 12 item 2).

The lines are taken from README.md as they stand and run in order in a single bash process, as
a user would type them: from a fresh copy of this checkout, with HOME a temp dir holding
~/code/myproject. Only the placeholder `ID` is filled in, with the id the first `pa new`
printed, as a user does. The user's side is real too: the pinned `claude` and `codex` CLIs on
PATH, configured (like a logged-in user's) to talk to the scripted model server on 127.0.0.1.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.testing import ScriptedModelServer, agents_prefix, find_agent
from parallel_agents.testing.agent_env import claude_env, codex_env

from .conftest import ROOT, _stop_leftover_server, make_repo
from .test_first_run import clone_copy, user_environ

pytestmark = pytest.mark.e2e  # real agent CLIs on the scripted model server

README = (ROOT / "README.md").read_text(encoding="utf-8")
LINE_TIMEOUT = 180.0


def quick_start_lines() -> list[str]:
    m = re.search(r"^## Quick start\n\n```sh\n(.*?)^```", README, re.M | re.S)
    assert m, "README.md has no Quick start code block"
    return [ln for ln in m.group(1).splitlines() if ln.strip()]


def _script() -> list[dict[str, object]]:
    """What the model says to each prompt of the Quick start (matched by the prompt)."""
    return [
        {
            "match": "Fix the flaky test in tests/test_api.py",
            "turns": [
                {
                    "say": "The test depends on time; pinning it.",
                    "write": {
                        "path": "tests/test_api.py",
                        "content": "def test_api():\n    assert 1 + 1 == 2\n",
                    },
                },
                {"text": "Fixed the flaky test."},
                # the follow-up (`pa send`): the same conversation, resumed
                {"write": {"path": "docs/api.md", "content": "# API\n\nTested.\n"}},
                {"text": "Updated the docs."},
            ],
        },
        {
            "match": "Add --json to the export command",
            "turns": [
                {
                    "write": {
                        "path": "export.py",
                        "content": "import json\n\n\ndef export(data):\n"
                        "    return json.dumps(data)\n",
                    }
                },
                {"text": "Added --json."},
            ],
        },
    ]


class Shell:
    """One bash process fed line by line; each line's output and exit code are collected."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.transcript: list[str] = []

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def run(self, line: str, timeout: float = LINE_TIMEOUT) -> tuple[int, str]:
        assert self.proc.stdin is not None
        marker = f"__pa_quick_start_done_{time.monotonic_ns()}__"
        self.proc.stdin.write(f"{line}\necho {marker} $?\n")
        self.proc.stdin.flush()
        self.transcript.append(f"$ {line}")
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no end of {line!r} within {timeout:g} s:\n" + "\n".join(self.transcript)
                ) from None
            if got == "":
                raise AssertionError("the shell exited:\n" + "\n".join(self.transcript))
            if got.startswith(marker):
                code = int(got.split()[1])
                self.transcript.append(f"(exit {code})")
                return code, "".join(out)
            out.append(got)
            self.transcript.append(got.rstrip("\n"))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def model_server() -> Iterator[ScriptedModelServer]:
    server = ScriptedModelServer(_script()).start()
    try:
        yield server
    finally:
        server.stop()


def test_readme_quick_start_runs_as_written(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    """issue 12 item 2: the README's Quick start, run literally from a clean shell, succeeds:
    every line exits 0, the merged session's work lands on myproject's main branch."""
    prefix = agents_prefix()
    for name in ("claude", "codex"):
        if find_agent(name, prefix) is None:
            pytest.skip(f"{name} is not installed in {prefix}: run scripts/install-agents.sh")
    checkout = clone_copy(tmp_path / "parallel-agents")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Ada\n\temail = ada@example.com\n")
    project = make_repo(
        home / "code" / "myproject",
        {"tests/test_api.py": "import time\n\n\ndef test_api():\n    assert time.time() % 2\n"},
    )
    env = user_environ(home)
    for k in [k for k in env if k.startswith("GIT_")]:
        del env[k]  # the user's identity is in ~/.gitconfig
    # The user's own agent setup: logged-in CLIs on PATH (here pointed at the scripted model).
    env.update(claude_env(home, base_url=model_server.url, api_key="quick-start-user"))
    env.update(codex_env(home, base_url=model_server.url, api_key="quick-start-user"))
    env["PATH"] = f"{prefix / 'bin'}:{env['PATH']}"

    shell = Shell(checkout, env)
    data_home = Path(env["XDG_DATA_HOME"]) / "parallel-agents"
    pa_bin = str(checkout / ".venv" / "bin" / "pa")
    sid = ""
    started: list[str] = []
    try:
        for line in quick_start_lines():
            command, hash_, comment = line.partition("  #")  # the comments stay as written
            if re.search(r"\bID\b", command):
                assert sid, "ID is used before `pa new` printed one"
                line = re.sub(r"\bID\b", sid, command) + hash_ + comment
            code, out = shell.run(line)
            assert code == 0, "\n".join(shell.transcript)
            if line.startswith("pa new "):
                m = re.search(r"^([0-9a-f]{6,})\s", out, re.M)
                assert m, out
                started.append(m.group(1))
                sid = sid or m.group(1)
        # The other session (codex) did its work too.
        waited = subprocess.run(
            [pa_bin, "wait", *started, "--timeout", str(LINE_TIMEOUT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT + 30,
            check=False,
        )
        assert waited.returncode == 0, waited.stdout + waited.stderr
    finally:
        print("\n".join(shell.transcript))  # shown on failure, or with -s
        shell.close()
        for argv in [["stop", s] for s in started] + [["server", "stop"]]:
            subprocess.run(
                [pa_bin, *argv], env=env, capture_output=True, timeout=60, check=False
            )
        _stop_leftover_server(data_home)
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"], cwd=project, capture_output=True, text=True
    ).stdout
    assert (project / "tests" / "test_api.py").read_text().endswith("1 + 1 == 2\n"), log
    assert (project / "docs" / "api.md").exists(), log

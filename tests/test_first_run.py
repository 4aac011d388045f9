"""A first run from a clone (issue 12, items 2 and 4): `scripts/demo` installs pa and only the
agent the demo runs, links `pa` into ~/.local/bin, says a server is left running and how to stop
it, and a new shell can then type `pa`.

The checkout is copied to a temp dir (its own fresh .venv, as in a clone) and HOME is a temp
dir; the agent CLI comes from the already installed prefix (PA_AGENTS_PREFIX), so nothing but
pa's own Python packages is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from parallel_agents.testing import agents_prefix, find_agent

from .conftest import ROOT, _stop_leftover_server

pytestmark = pytest.mark.e2e  # real agent CLIs on the scripted model server

# The stock ~/.profile lines of Debian and Ubuntu (/etc/skel/.profile), which useradd copies
# into every new home there. Written here, so the test does not depend on this machine's skel.
DEBIAN_PROFILE = """\
# set PATH so it includes user's private bin if it exists
if [ -d "$HOME/.local/bin" ] ; then
    PATH="$HOME/.local/bin:$PATH"
fi
"""


def clone_copy(dest: Path) -> Path:
    """What a clone holds (the tracked files as they are in this worktree; tests, docs and
    bench left out), plus the dashboard's built vendor files, which a checkout builds once."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for rel in tracked:
        if not rel or rel.split("/")[0] in ("tests", "docs", "bench"):
            continue
        src = ROOT / rel
        if not src.exists():
            continue  # deleted in the worktree, not yet committed
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    vendor = Path("src/parallel_agents/web/static/vendor")
    if (ROOT / vendor).is_dir():
        shutil.copytree(ROOT / vendor, dest / vendor, dirs_exist_ok=True)
    return dest


def user_environ(home: Path) -> dict[str, str]:
    """A user's shell environment: no PA_* or XDG_* settings, no venv on PATH, HOME=home."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PA_", "XDG_", "VIRTUAL_ENV")) and k not in ("PWD", "OLDPWD")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and "/.venv/" not in p + "/"
    )
    env["HOME"] = str(home)
    env["SHELL"] = "/bin/bash"
    return env


def new_login_shell(home: Path, script: str) -> subprocess.CompletedProcess[str]:
    """What a fresh terminal login runs: nothing inherited but HOME."""
    return subprocess.run(
        ["bash", "-lc", script],
        env={"HOME": str(home), "TERM": "dumb"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class DemoRun:
    checkout: Path
    home: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    prefix = agents_prefix()
    if find_agent("mini", prefix) is None:
        pytest.skip(f"mini is not installed in {prefix}: run scripts/install-agents.sh mini")
    base = tmp_path_factory.mktemp("firstrun")
    checkout = clone_copy(base / "clone")
    home = base / "home"
    home.mkdir()
    (home / ".profile").write_text(DEBIAN_PROFILE)
    env = {**user_environ(home), "PA_AGENTS_PREFIX": str(prefix)}
    assert shutil.which("pa", path=env["PATH"]) is None, "a pa on PATH would hide the result"
    result = subprocess.run(
        [str(checkout / "scripts" / "demo"), "--sessions", "1"],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        yield DemoRun(checkout, home, result)
    finally:
        new_login_shell(home, "pa server stop")
        _stop_leftover_server(home / ".local" / "share" / "parallel-agents")


def test_demo_then_pa_ls_in_a_new_login_shell(demo_run: DemoRun) -> None:
    """issue 12 item 2: after scripts/demo, `pa ls` in a new (login) shell lists the demo's
    session; the demo says a server keeps running and that `pa server stop` stops it."""
    out = demo_run.result.stdout + demo_run.result.stderr
    assert demo_run.result.returncode == 0, out
    assert "keeps running in the background" in out and "pa server stop" in out, out
    assert "new login shells find it" in demo_run.result.stderr, out
    ls = new_login_shell(demo_run.home, "pa ls")
    assert ls.returncode == 0, ls.stdout + ls.stderr
    assert "Fix add()" in ls.stdout and "mini" in ls.stdout, ls.stdout


def test_demo_installs_only_the_agent_it_runs(demo_run: DemoRun) -> None:
    """issue 12 item 4: scripts/demo installs (or checks) only the demo's agent, mini by
    default, and says how to run the others."""
    out = demo_run.result.stdout + demo_run.result.stderr
    lines = [ln for ln in out.splitlines() if "install-agents" in ln or "->" in ln]
    assert any("mini" in ln for ln in lines), out
    named = {a for a in ("claude", "codex", "gemini", "opencode") for ln in lines if a in ln}
    assert named == set(), lines
    assert "scripts/demo --agent claude" in demo_run.result.stderr


def test_link_pa_prints_the_exact_path_line_when_no_profile_adds_it(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    """issue 12 item 2: where no profile puts ~/.local/bin on PATH, the exact `export PATH=`
    line printed makes `pa` work in a new shell."""
    home = tmp_path / "home"
    home.mkdir()
    env = user_environ(home)
    done = subprocess.run(
        ["bash", str(demo_run.checkout / "scripts" / "link-pa")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "is not on your PATH" in done.stderr, done.stderr
    m = re.search(r"^\s+(export PATH=.*)$", done.stderr, re.M)
    assert m, done.stderr
    shell = subprocess.run(
        ["bash", "-c", f"{m.group(1)}\npa --version && pa server status"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # `pa server status` exits 1 with "no server running": pa itself was found and ran.
    assert "no server running" in shell.stdout, shell.stdout + shell.stderr


def test_install_agents_takes_names(tmp_path: Path) -> None:
    """issue 12 item 4: `scripts/install-agents.sh --check mini` looks at mini only; the
    no-name form still covers every agent."""
    env = {**os.environ, "PA_AGENTS_PREFIX": str(tmp_path / "prefix")}
    script = str(ROOT / "scripts" / "install-agents.sh")
    one = subprocess.run(
        ["bash", script, "--check", "mini"], env=env, capture_output=True, text=True, check=False
    )
    assert one.returncode == 1, one.stderr
    assert [ln.split(" (")[0] for ln in one.stdout.splitlines()] == [
        "install-agents: mini: missing"
    ], one.stdout
    every = subprocess.run(
        ["bash", script, "--check"], env=env, capture_output=True, text=True, check=False
    )
    assert every.returncode == 1
    assert {ln.split(":")[1].strip() for ln in every.stdout.splitlines()} >= {
        "claude",
        "codex",
        "gemini",
        "opencode",
        "mini",
    }
    bad = subprocess.run(
        ["bash", script, "nosuch"], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "usage" in bad.stderr

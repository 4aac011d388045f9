"""Issue 19: choosing a session's runtime. Ray is optional and lazy: a local session never
imports it; a Ray cluster that cannot be reached, an unknown runtime and an interactive
session on Ray are refused before anything is made, and local sessions are unaffected."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_repo, pa

IMPORTS = (
    "import json, sys\n"
    "from parallel_agents.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], prog_name='pa')\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_local_session_never_imports_ray(tmp_path: Path) -> None:
    """issue 19: `pa new` of a local session (the engine in-process) loads no Ray."""
    repo = make_repo(tmp_path / "repo")
    p = subprocess.run(
        [sys.executable, "-c", IMPORTS, "new", "hi", "--cmd", "true", "--json"],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    mods = json.loads(p.stderr.strip().splitlines()[-1])
    assert "parallel_agents.sessions.headless" in mods  # the engine ran here
    loaded = [m for m in mods if m == "ray" or m.startswith(("ray.", "parallel_agents.runtime.ray"))]
    assert loaded == []


def test_ray_head_unreachable_is_a_clear_error_and_local_sessions_go_on(tmp_path: Path) -> None:
    """issue 19: `pa new --runtime ray` with no Ray head answering: `error:` + `hint:`,
    no session made; a local session right after starts and finishes as always."""
    repo = make_repo(tmp_path / "repo")
    addr = f"127.0.0.1:{_closed_port()}"
    r = pa("new", "x", "--cmd", "true", "--runtime", "ray", cwd=repo,
           env={"PA_RAY_ADDRESS": addr})  # fmt: skip
    assert r.returncode != 0
    assert f"error: cannot reach the Ray cluster at {addr}" in r.stderr
    assert "hint: start one with `ray start --head`" in r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads(pa("ls", "--json", cwd=repo, check=True).stdout) == []
    s = json.loads(pa("new", "ok", "--cmd", "sh -c 'echo local'", "--json", cwd=repo,
                      env={"PA_RAY_ADDRESS": addr}, check=True).stdout)  # fmt: skip
    out = pa("wait", s["id"], "--json", cwd=repo, check=True)
    assert "idle" in out.stdout


def test_runtime_ray_setting_applies_to_pa_new(tmp_path: Path) -> None:
    """issue 19: `runtime.kind = "ray"` makes `pa new` (no --runtime) go to Ray; `--runtime
    local` overrides it."""
    repo = make_repo(tmp_path / "repo")
    port = _closed_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[runtime]\nkind = "ray"\n[runtime.ray]\naddress = "127.0.0.1:{port}"\n')
    r = pa("new", "x", "--cmd", "true", cwd=repo, env={"PA_CONFIG": str(cfg)})
    assert r.returncode != 0 and "error: cannot reach the Ray cluster" in r.stderr
    r = pa("new", "x", "--cmd", "true", "--runtime", "local", "--json", cwd=repo,
           env={"PA_CONFIG": str(cfg)})  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_a_bad_runtime_setting_is_refused(tmp_path: Path) -> None:
    """issue 19: `runtime.kind` is local or ray; anything else is named in the error."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[runtime]\nkind = "k8s"\n')
    r = pa("ls", env={"PA_CONFIG": str(cfg)})
    assert r.returncode != 0
    assert "error: runtime.kind must be local or ray (got 'k8s')" in r.stderr


def test_interactive_on_ray_says_local_only(tmp_path: Path) -> None:
    """issue 19: interactive sessions stay on this machine in this step, and say so."""
    repo = make_repo(tmp_path / "repo")
    r = pa("new", "x", "--interactive", "--runtime", "ray", "--agent", "command",
           "--cmd", "true", cwd=repo)  # fmt: skip
    assert r.returncode == 2
    assert "error: interactive sessions run on this machine only" in r.stderr
    assert "hint:" in r.stderr
    assert json.loads(pa("ls", "--json", cwd=repo, check=True).stdout) == []


def test_server_start_with_an_unreachable_ray_head_starts_nothing(tmp_path: Path) -> None:
    """issue 19: `pa server start --runtime ray --ray-address ADDR` checks the head first."""
    addr = f"127.0.0.1:{_closed_port()}"
    r = pa("server", "start", "--runtime", "ray", "--ray-address", addr)
    assert r.returncode != 0
    assert f"error: cannot reach the Ray cluster at {addr}" in r.stderr
    assert pa("server", "status").returncode != 0


def test_a_node_runs_the_cli_found_on_its_own_path(tmp_path: Path) -> None:
    """issue 19: the orchestrator's absolute path to an agent CLI is not where another
    machine keeps it: the node runs the program of that name on its own PATH, and leaves an
    argv whose program exists (or that no PATH entry has) as it is."""
    import shutil

    from parallel_agents.runtime.ray_node import program_here

    git_here = shutil.which("git")
    assert git_here is not None
    elsewhere = str(tmp_path / "opt" / "bin" / "git")
    assert program_here([elsewhere, "--version"]) == [git_here, "--version"]
    assert program_here([git_here, "status"]) == [git_here, "status"]
    missing = str(tmp_path / "bin" / "no-such-cli-here")
    assert program_here([missing, "-p"]) == [missing, "-p"]
    assert program_here(["sh", "-c", "true"]) == ["sh", "-c", "true"]

"""Issue 16 §1: each session is given a block of free ports no other session holds,
recorded in the store, exported as PA_PORT / PA_PORTS / PORT, given back on discard."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from parallel_agents.store import Store
from tests.conftest import git, make_repo, pa

# The agent writes what it was given into the worktree.
SHOW_PORTS = 'echo "$PA_PORT|$PA_PORTS|$PORT" > ports.txt'


def _repo(tmp_path: Path, toml: str, name: str = "repo") -> Path:
    repo = make_repo(tmp_path / name)
    (repo / ".parallel-agents.toml").write_text(toml)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "pa config")
    return repo


def _settings(text: str) -> None:
    d = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(text)


def _free_range(n: int) -> tuple[int, int]:
    """``n`` consecutive ports nothing listens on now (a range of its own per test)."""
    for lo in range(41000, 60000, 97):
        if all(_bindable(p) for p in range(lo, lo + n)):
            return lo, lo + n - 1
    raise AssertionError("no free range")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _new(repo: Path, *extra: str) -> dict[str, object]:
    out = pa("new", "ports", "--cmd", f"sh -c '{SHOW_PORTS}'", "--json", *extra, cwd=repo)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_sessions_get_distinct_ports_exported_to_the_agent(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §1: two sessions hold distinct blocks of `ports` ports; the agent (and the
    setup script) see PA_PORT (the first), PA_PORTS (all) and PORT."""
    repo = _repo(tmp_path, 'ports = 3\nsetup = "echo $PA_PORTS > setup.txt"\n')
    a, b = _new(repo), _new(repo)
    pa("wait", str(a["id"]), str(b["id"]), check=True)
    st = Store(pa_home)
    pa_ports = st.session_ports(str(a["id"]))
    pb = st.session_ports(str(b["id"]))
    assert len(pa_ports) == 3 and len(pb) == 3 and not set(pa_ports) & set(pb)
    lo, hi = 20000, 29999  # the default ports.range
    assert all(lo <= p <= hi for p in pa_ports + pb)
    seen = (Path(str(a["worktree"])) / "ports.txt").read_text().strip()
    first = str(pa_ports[0])
    assert seen == f"{first}|{','.join(map(str, pa_ports))}|{first}"
    setup = (Path(str(b["worktree"])) / "setup.txt").read_text().strip()
    assert setup == ",".join(map(str, pb))


def test_a_busy_port_is_skipped_and_exhaustion_makes_nothing(
    tmp_path: Path, pa_home: Path
) -> None:
    """issue 16 §1: a port something listens on is never handed out; when the range has
    too few left, `pa new` says so clearly and makes no session, worktree nor branch."""
    lo, hi = _free_range(5)
    _settings(f'[ports]\nrange = "{lo}-{hi}"\n')
    repo = _repo(tmp_path, "ports = 2\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", lo + 1))
        busy.listen()
        a = _new(repo)
        assert Store(pa_home).session_ports(str(a["id"])) == [lo, lo + 2]
        b = _new(repo)
        assert Store(pa_home).session_ports(str(b["id"])) == [lo + 3, lo + 4]
        branches = git(repo, "branch", "--list", "pa/*")
        out = pa("new", "ports", "--cmd", "true", cwd=repo)
    assert out.returncode != 0
    assert "error: no 2 free ports left in ports.range" in out.stderr
    assert "hint:" in out.stderr and "Traceback" not in out.stderr
    listed = json.loads(pa("ls", "--json", check=True).stdout)
    assert sorted(s["id"] for s in listed) == sorted([a["id"], b["id"]])
    assert git(repo, "branch", "--list", "pa/*") == branches
    assert len(list((pa_home / "worktrees" / "repo").iterdir())) == 2


def test_discard_gives_the_ports_back(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §1: a discarded session's ports are released and handed out again."""
    lo, hi = _free_range(2)
    _settings(f'[ports]\nrange = "{lo}-{hi}"\n')
    repo = _repo(tmp_path, "ports = 2\n")
    a = _new(repo)
    pa("wait", str(a["id"]), check=True)
    assert pa("new", "x", "--cmd", "true", cwd=repo).returncode != 0
    pa("discard", str(a["id"]), check=True)
    assert Store(pa_home).session_ports(str(a["id"])) == []
    b = _new(repo)
    assert Store(pa_home).session_ports(str(b["id"])) == [lo, hi]


def test_a_bad_ports_setting_is_refused(tmp_path: Path) -> None:
    """issue 16 §1: ports.range and `ports = N` are validated, naming the file."""
    _settings('[ports]\nrange = "30000-20000"\n')
    out = pa("ls")
    assert out.returncode != 0 and "ports.range" in out.stderr
    _settings("")
    repo = _repo(tmp_path, 'ports = "ten"\n')
    out = pa("new", "x", "--cmd", "true", cwd=repo)
    assert out.returncode != 0 and "'ports' must be a whole number" in out.stderr


def test_restore_gives_a_new_block_of_ports(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §1: a restored session (its ports were given back at the discard) is
    given a block again, exported to its next turn."""
    repo = _repo(tmp_path, "ports = 2\n")
    a = _new(repo)
    pa("wait", str(a["id"]), check=True)
    pa("discard", str(a["id"]), check=True)
    assert Store(pa_home).session_ports(str(a["id"])) == []
    pa("restore", str(a["id"]), check=True)
    held = Store(pa_home).session_ports(str(a["id"]))
    assert len(held) == 2
    pa("send", str(a["id"]), "again", check=True)
    pa("wait", str(a["id"]), check=True)
    seen = (Path(str(a["worktree"])) / "ports.txt").read_text().strip()
    assert seen.startswith(f"{held[0]}|")


def test_a_merge_that_removes_the_worktree_gives_the_ports_back(
    tmp_path: Path, pa_home: Path
) -> None:
    """issue 16 §1: with merge.remove_worktree, the merged session's ports are released."""
    _settings("[merge]\nremove_worktree = true\n")
    repo = _repo(tmp_path, "ports = 2\n")
    a = _new(repo)
    pa("wait", str(a["id"]), check=True)
    assert len(Store(pa_home).session_ports(str(a["id"]))) == 2
    pa("merge", str(a["id"]), check=True)
    assert not Path(str(a["worktree"])).exists()
    assert Store(pa_home).session_ports(str(a["id"])) == []

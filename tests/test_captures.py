"""Issue 12 item 3: the recorded agent output lives in the repository, and a run that skips
for missing fixtures fails.

The captures in tests/fixtures/captures are recorded by scripts/record-captures from the real
pinned CLIs against the scripted model server; nothing in the suite or the benchmarks looks
outside the clone for them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.testing import find_agent
from parallel_agents.testing.record_captures import RECORDINGS, SCREENS, Normalizer, record_agent

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "fixtures" / "captures"


def test_every_recording_is_committed_with_its_manifest_entry() -> None:
    """issue 12 item 3: each capture the recorder makes is in the repository, and the
    manifest says which CLI version and argv produced it."""
    manifest = json.loads((CAPTURES / "manifest.json").read_text(encoding="utf-8"))
    for rec in RECORDINGS:
        if rec.name.endswith("help.txt"):  # named after the CLI's version: help_<version>.txt
            prefix = f"{rec.agent}/{rec.name.removesuffix('.txt')}_"
            (name,) = [k for k in manifest if k.startswith(prefix)]
        else:
            name = f"{rec.agent}/{rec.name}"
        assert (CAPTURES / name).is_file(), name
        assert manifest[name]["version"] != "unknown" and manifest[name]["argv"][0] == rec.agent
    for screen in SCREENS:  # the tmux panes of the interactive CLIs
        assert manifest[f"tui/{screen.name}"]["argv"][0] == screen.agent
        assert (CAPTURES / "tui" / screen.name).is_file(), screen.name
    for name in manifest:
        text = (CAPTURES / name).read_text(encoding="utf-8")
        # Rewritten to placeholders: no temp folder, home or port of the recording machine.
        assert "pa-captures-" not in text and str(Path.home()) + "/" not in text, name


def test_nothing_looks_outside_the_repository_for_captures() -> None:
    """issue 12 item 3: tests and benchmarks never read the build machine's shared folder."""
    offenders = []
    for folder in ("src", "tests", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".sh", ""} or not path.is_file():
                continue
            if path == Path(__file__):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"shared/reference|/work/shared|agent-captures", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_bench_replays_the_in_repo_captures() -> None:
    """issue 12 item 3: the benchmark's agent output comes from tests/fixtures/captures, and
    its results name that folder relative to the clone (no machine path)."""
    env = {k: v for k, v in os.environ.items() if k != "PA_CAPTURES"}
    code = "from bench.fake_agent import source_lines; print(source_lines()[1])"
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r"\d+ lines replayed from tests/fixtures/captures", where), where


SAMPLE = """
import pytest

def test_ok():
    pass

def test_needs_fixtures():
    pytest.skip("{reason}")
"""


def _run_sample(tmp_path: Path, reason: str) -> subprocess.CompletedProcess[str]:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE.format(reason=reason), encoding="utf-8")
    # The suite's own conftest as a plugin, so its skip policy applies to the sample.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(sample),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize(
    "reason", ["agent captures not found", "fixtures missing", "missing fixture files"]
)
def test_a_skip_for_missing_fixtures_fails_the_run(tmp_path: Path, reason: str) -> None:
    """issue 12 item 3: a skip whose reason is missing fixtures/captures makes the run fail
    (non-zero exit) and is listed in the summary, so a CI reader sees it."""
    proc = _run_sample(tmp_path, reason)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "skipped for missing fixtures: the run fails" in proc.stdout
    assert f"test_needs_fixtures: {reason}" in proc.stdout


def test_an_actionable_skip_keeps_the_run_green(tmp_path: Path) -> None:
    """issue 12 item 3: other skips (each says what to install) do not fail the run."""
    proc = _run_sample(tmp_path, "tmux is not installed (apt-get install tmux)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "missing fixtures" not in proc.stdout


def test_normalizer_rewrites_machine_details_to_placeholders(tmp_path: Path) -> None:
    """issue 12 item 3: recordings from any machine give the same files."""
    norm = Normalizer()
    work = tmp_path / "g" / "work"
    norm.add_path(work, "/tmp/example/work")
    sid = "01defc1a-91a5-444c-aad1-613c47385ad8"
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(work))
    line = json.dumps(
        {
            "cwd": str(work),
            "session_id": sid,
            "memory": f"/h/.claude/projects/{slug}/memory/",
            "timestamp": "2026-11-29T15:55:23.925Z",
            "duration_ms": 4123,
            "id": "ses_dd7f473c8ffeVbqhN9gR7Ev6M4",
            "tool": "write_file_1795968096675_0",
            "ttft_ms": 217,
            "totalLatencyMs": 139,
            "created": 1796293859.9489198,
            "date": "Thu, 03 Dec 2026 10:28:42 GMT",
        }
    )
    out = json.loads(norm(line))
    assert out == {
        "cwd": "/tmp/example/work",
        "session_id": "00000000-0000-4000-8000-000000000001",
        "memory": "/h/.claude/projects/-tmp-example-work/memory/",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "duration_ms": 0,
        "id": "ses_example0001",
        "tool": "write_file_1767225600000_0",
        "ttft_ms": 0,
        "totalLatencyMs": 0,
        "created": 1767225600,
        "date": "Thu, 01 Jan 2026 00:00:00 GMT",
    }
    assert norm("❯ create hello\n✶ Germinating…\n") == "❯ create hello\n✻ Working…\n"
    # The same id keeps its placeholder in a later file (a resumed session).
    assert json.loads(norm(json.dumps({"s": sid})))["s"] == out["session_id"]


@pytest.mark.e2e
def test_re_recording_gives_the_committed_captures(tmp_path: Path) -> None:
    """issue 12 item 3: scripts/record-captures is reproducible: recording Codex again, on
    this machine, gives byte for byte the committed files."""
    codex = find_agent("codex")
    if codex is None:
        pytest.skip("the codex CLI is not installed: run scripts/install-agents.sh")
    record_agent("codex", tmp_path, codex, lambda _m: None)
    for path in sorted((tmp_path / "codex").iterdir()):
        assert path.read_text(encoding="utf-8") == (CAPTURES / "codex" / path.name).read_text(
            encoding="utf-8"
        ), path.name

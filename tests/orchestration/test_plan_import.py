"""Issue 15 §1: `pa plan import` makes a plan file from a ccpm epic folder (epic.md and
numbered task files whose YAML front matter holds depends_on, parallel and
conflicts_with), and the plan it writes is one `pa plan run` reads."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_agents.cli.plans import _toml_value
from parallel_agents.sessions.plan_file import parse_plan
from tests.conftest import pa

KNOWN = {"command", "claude"}.__contains__


def _task(folder: Path, stem: str, front: str, body: str) -> None:
    (folder / f"{stem}.md").write_text(f"---\n{front}\n---\n\n{body}\n", encoding="utf-8")


def _epic(tmp_path: Path) -> Path:
    folder = tmp_path / ".claude" / "epics" / "user-auth"
    folder.mkdir(parents=True)
    (folder / "epic.md").write_text(
        "---\nname: user-auth\nstatus: backlog\ncreated: 2026-12-01T10:00:00Z\n"
        "prd: .claude/prds/user-auth.md\n---\n\n# Epic: user-auth\n\nLog in with email.\n",
        encoding="utf-8",
    )
    common = "status: open\ncreated: 2026-12-01T10:00:00Z\ngithub: [Will be updated]"
    _task(folder, "001", f"name: Users table\n{common}\ndepends_on: []\nparallel: true\nconflicts_with: []",
          "# Task: Users table\n\n## Description\nAdd a users table with 'email' and \"hash\".")
    _task(folder, "002", f"name: Login endpoint\n{common}\ndepends_on: [001]\nparallel: true\nconflicts_with: [003]",
          "# Task: Login endpoint\n\nPOST /login.")
    _task(folder, "003", f"name: Migrations\n{common}\ndepends_on: [001]\nparallel: false\nconflicts_with: []",
          "# Task: Migrations\n\nOne migration per table.")
    _task(folder, "004", "name: Old spike\nstatus: closed\ndepends_on: []\nparallel: true",
          "Done long ago.")
    # 010 and 008 read as octal by a plain YAML loader (8 and an error); here they are text.
    _task(folder, "008", f"name: Docs\n{common}\ndepends_on: [004, 002]\nparallel: true\nconflicts_with: [010]", "Write the docs.")
    _task(folder, "010", f"name: Release\n{common}\ndepends_on: [008]\nparallel: true", "")
    (folder / "001-analysis.md").write_text("# streams of 001\n", encoding="utf-8")
    return folder


def test_a_ccpm_epic_becomes_a_plan(tmp_path: Path) -> None:
    """issue 15 §1 (import): each numbered task file is a task (title from name, prompt
    from the body), depends_on and conflicts_with are kept, parallel: false conflicts
    with every other task, closed tasks and dependencies on them are left out."""
    folder = _epic(tmp_path)
    p = pa("plan", "import", str(folder), "--agent", "claude", "--auto-merge")
    assert p.returncode == 0, p.stderr
    plan = parse_plan(p.stdout, known_agent=KNOWN)  # a plan pa plan run reads
    assert plan.name == "user-auth"
    assert plan.description is not None and "Log in with email." in plan.description
    t = {x.id: x for x in plan.tasks}
    assert list(t) == ["001", "002", "003", "008", "010"]
    assert t["001"].title == "Users table" and t["001"].agent == "claude"
    assert t["001"].prompt == "# Task: Users table\n\n## Description\nAdd a users table with 'email' and \"hash\"."
    assert t["001"].auto_merge is True
    assert t["002"].depends_on == ["001"] and t["002"].conflicts_with == ["003"]
    assert t["003"].conflicts_with == ["001", "002", "008", "010"]  # parallel: false
    assert t["008"].depends_on == ["002"]  # 004 is closed
    assert t["008"].conflicts_with == ["010"]
    assert t["010"].prompt == "Release" and t["010"].depends_on == ["008"]
    assert p.stdout.count("[[tasks]]") == 5


def test_import_writes_a_file_and_json(tmp_path: Path) -> None:
    """issue 15 §1 (import): --out writes the plan file; --json prints the plan's data;
    an epic whose own references are wrong is caught by pa plan run, naming the task."""
    folder = _epic(tmp_path)
    out = tmp_path / "auth.toml"
    p = pa("plan", "import", str(folder), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"wrote {out}: 5 tasks; start it: pa plan run {out}"
    assert "[defaults]" not in out.read_text()
    p = pa("plan", "import", str(folder), "--json")
    doc = json.loads(p.stdout)
    assert [x["id"] for x in doc["tasks"]] == ["001", "002", "003", "008", "010"]
    _task(folder, "011", "name: Broken\nstatus: open\ndepends_on: [12]\nparallel: true", "x")
    p = pa("plan", "import", str(folder), "--agent", "claude")
    plan_file = tmp_path / "broken.toml"
    plan_file.write_text(p.stdout)
    p = pa("plan", "run", str(plan_file))
    assert p.returncode == 2
    assert "task '011': depends_on names '12', which is no task of this plan" in p.stderr


def test_import_of_a_folder_without_tasks(tmp_path: Path) -> None:
    """issue 15 §1 (import): a folder with no numbered task files is a clear error."""
    p = pa("plan", "import", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "holds no numbered task files (001.md, 002.md, …)" in p.stderr
    assert "hint: point pa plan import at one ccpm epic folder" in p.stderr


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_survives_the_toml_it_is_written_as(text: str) -> None:
    """issue 15 §1 (import): a prompt of any text (quotes, ''' , control characters,
    newlines) reads back from the plan file exactly."""
    assert tomllib.loads(f"k = {_toml_value(text)}")["k"] == text

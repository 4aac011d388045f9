"""Issue 15 §4 in the dashboard: a map group's report (items, states, outcomes, diff sizes)
in the Maps view, updated live as its sessions end, with its reduce linked."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import Server, js_wait, shot

MAPPER = r"""
import json, os, re, time
prompt = os.environ["PA_PROMPT"]
gate = GATE_PATH
while not os.path.exists(gate):
    time.sleep(0.05)
name = re.search(r"file=(\S+)", prompt).group(1)
status = re.search(r"outcome=(\w+)", prompt).group(1)
if status != "skip":
    os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
    with open(name, "w") as f:
        f.write("fixed\n" * (1 + len(name) % 4))
if status != "none":
    summary = {"success": f"fixed {name}", "failure": "the tests still fail", "skip": "already clean"}[status]
    with open(os.environ["PA_OUTCOME"], "w") as f:
        json.dump({"status": status, "summary": summary}, f)
print("done", name)
"""

ITEMS = [
    ("src/parser.py", "success"),
    ("src/lexer.py", "success"),
    ("src/cache.py", "failure"),
    ("docs/usage.md", "success"),
    ("src/cli.py", "none"),
    ("setup.cfg", "skip"),
]


def _until(what: str, pred: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_map_report_in_the_dashboard(server: Server, page: Any, tmp_path: Path) -> None:
    """issue 15 §4: the Maps view lists the map group; its report shows every item, first
    running, then (live, no reload) each one's state, outcome (derived ones marked *)
    and diff size; after `reduce` it links the reduce group and the reducer session."""
    server.repo("lintfix", {"README.md": "# lintfix\n", "src/parser.py": "x = 1\n"})
    mapper = tmp_path / "mapper.py"
    gate = tmp_path / "gate"
    mapper.write_text(MAPPER.replace("GATE_PATH", repr(str(gate))))
    items = "".join(
        json.dumps({"file": f, "outcome": o}) + "\n" for f, o in ITEMS
    )
    rep = server.api(
        "POST",
        "/maps",
        {
            "template": "fix the lint errors in {file}\n\nfile={file} outcome={outcome}",
            "items": items,
            "repo": "lintfix",
            "agent": "command",
            "cmd": [sys.executable, str(mapper)],
            "name": "lint-fixes",
        },
    )
    gid = rep["group"]["id"]

    try:
        _report(server, page, gid, gate)
    finally:
        gate.write_text("go")  # never leave an agent waiting


def _report(server: Server, page: Any, gid: str, gate: Path) -> None:
    page.click('nav.views a[data-view="maps"]')
    page.get_by_role("link", name="lint-fixes").click()
    js_wait(page, "() => document.querySelectorAll('.maps-table tbody tr').length === 6")
    assert page.locator(".maps-head strong").inner_text() == "lint-fixes"
    assert page.locator(".maps-table tbody td.st-running").count() == 6

    gate.write_text("go")
    js_wait(
        page,
        "() => [...document.querySelectorAll('.maps-table tbody tr')].every("
        "(tr) => tr.children[2].textContent === 'done' && tr.children[6].textContent !== '–')",
        timeout=60_000,
    )
    outcomes = page.locator(".maps-table tbody td.outcome").all_inner_texts()
    assert outcomes == ["success", "success", "failure", "success", "success*", "skip"]
    assert page.locator(".maps-table tbody tr").nth(0).locator("td").nth(6).inner_text() == "1 +2 -1"

    res = server.api(
        "POST", f"/maps/{gid}/reduce", {"agent": "command", "cmd": [sys.executable, "-c", "print('reduced')"]}
    )
    _until("the reducer to end", lambda: server.session(res["session"]["id"])["status"] == "idle")
    page.click('a[href="#/maps"]')
    page.get_by_role("link", name="lint-fixes").click()
    js_wait(page, "() => !!document.querySelector('.maps-reduce')")
    reduce_line = page.locator(".maps-reduce").inner_text()
    assert "lint-fixes-reduce" in reduce_line and "4 merged" in reduce_line
    shot(page, "map")

    page.get_by_role("link", name="lint-fixes-reduce").click()
    js_wait(page, "() => document.querySelector('.maps-head strong')?.textContent === 'lint-fixes-reduce'")
    js_wait(page, "() => document.querySelector('.maps-table td.outcome')?.textContent === 'success*'")

"""Issue 15 §4, bad input: every refusal of `pa map` and `pa reduce` is one clear error
(`error:` and `hint:`, no traceback) given before anything starts, and loses nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import make_repo, pa

PY = sys.executable


def _nothing_made() -> None:
    assert json.loads(pa("map", "ls", "--json").stdout) == []
    assert json.loads(pa("ls", "--all", "--json").stdout) == []


@pytest.mark.parametrize(
    ("template", "items", "message"),
    [
        ("fix {item", "a\n", "the template is not valid"),
        ("fix {item.name}", "a\n", "the template's placeholder {item.name} is not one pa fills"),
        ("fix {item!r}", "a\n", "the template's placeholder {item!r} is not one pa fills"),
        ("fix {}", "a\n", "the template's placeholder {} is not one pa fills"),
        ("fix it", "a\n", "the template has no placeholder"),
        ("   ", "a\n", "the template is empty"),
        ("fix {file}", "a\nb\n", "the template's placeholder {file} is unknown: plain items only fill {item}"),
        ("fix {file}", '{"file": "a"}\n{"path": "b"}\n', "item line 2 has no field 'file'"),
        ("fix {file}", '{"file": "a"}\nplain\n', "item line 2 is not a JSON object"),
        ("fix {file}", '{"file": "a"}\n[1]\n', "item line 2 is JSON but not an object"),
        ("fix {item}", "\n  \n\n", "the item list is empty"),
        ("fix {item}", "", "the item list is empty"),
    ],
)
def test_bad_templates_and_items_start_nothing(
    tmp_path: Path, template: str, items: str, message: str
) -> None:
    """issue 15 §4: a bad template, an item that cannot fill it or an empty list is refused
    before any group or session exists."""
    repo = make_repo(tmp_path / "repo")
    p = pa("map", "--template", template, "--items", "-", "--cmd", "true", cwd=repo, input=items)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"error: {message}" in p.stderr and "hint:" in p.stderr
    assert "Traceback" not in p.stderr
    _nothing_made()


def test_too_many_items_bad_agent_and_missing_file(tmp_path: Path) -> None:
    """issue 15 §4: more items than limits.max_map_items, an unknown agent, an items file
    that is not there: refused, nothing made; the cap is a setting."""
    repo = make_repo(tmp_path / "repo")
    cfg = tmp_path / "config.toml"
    cfg.write_text("[limits]\nmax_map_items = 3\n")
    env = {"PA_CONFIG": str(cfg)}
    four = "a\nb\nc\nd\n"
    p = pa("map", "--template", "do {item}", "--items", "-", "--cmd", "true", cwd=repo, input=four, env=env)
    assert p.returncode == 2
    assert "error: 4 items are more than limits.max_map_items (3) allows" in p.stderr
    assert "hint:" in p.stderr
    cfg.write_text("[limits]\nmax_map_items = 0\n")
    p = pa("map", "--template", "do {item}", "--items", "-", "--cmd", "true", cwd=repo, input="a\n", env=env)
    assert p.returncode == 2 and "limits.max_map_items must be a whole number" in p.stderr
    p = pa("map", "--template", "do {item}", "--items", "-", "--agent", "nosuch", cwd=repo, input="a\n")
    assert p.returncode == 2 and "unknown agent 'nosuch'" in p.stderr
    p = pa("map", "--template", "do {item}", "--items", "-", "--cmd", "/no/such/program", cwd=repo, input="a\n")
    assert p.returncode != 0 and "does not exist" in p.stderr
    p = pa("map", "--template", "do {item}", "--items", str(tmp_path / "none.txt"), "--cmd", "true", cwd=repo)
    assert p.returncode == 2 and "cannot read the items file" in p.stderr
    p = pa("map", "--items", "-", "--cmd", "true", cwd=repo, input="a\n")
    assert p.returncode == 2 and "needs --template and --items" in p.stderr
    p = pa("map", "--template", "do {item}", "--items", "-", "--base", "nope", "--cmd", "true", cwd=repo, input="a\n")
    assert p.returncode == 2 and "unknown base 'nope'" in p.stderr
    _nothing_made()


def test_reduce_refuses_unknown_running_and_non_map_groups(tmp_path: Path) -> None:
    """issue 15 §4: reducing an unknown group, a map group whose items still run, or a
    group that is not a map group is refused and changes nothing; once the items end the
    same reduce works, and the items that queued behind limits.max_running ran too."""
    repo = make_repo(tmp_path / "repo")
    cfg = tmp_path / "config.toml"
    cfg.write_text("[limits]\nmax_running = 2\n")
    env = {"PA_CONFIG": str(cfg)}
    gate = tmp_path / "gate"
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, time\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.02)\n"
        "name = os.environ['PA_PROMPT'].split()[1]\n"
        "open(name + '.txt', 'w').write(name)\n"
    )
    p = pa("reduce", "nosuch", "--cmd", "true", env=env)
    assert p.returncode == 2 and "error: no group 'nosuch'" in p.stderr and "pa map ls" in p.stderr

    p = pa(
        "map", "--template", "make {item}", "--items", "-", "--name", "gated", "--json",
        "--cmd", f"{PY} {agent}", cwd=repo, input="one\ntwo\nthree\n", env=env,
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    statuses = [i["status"] for i in rep["items"]]
    assert statuses.count("queued") == 1, "the third waits for a place (limits.max_running)"

    p = pa("reduce", "gated", "--cmd", "true", env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "error: map group gated: 3 of 3 items are still running" in p.stderr
    assert "hint:" in p.stderr and "nothing was reduced" in p.stderr
    shown = json.loads(pa("map", "show", "gated", "--json", env=env).stdout)
    assert shown["reduces"] == [] and shown["group"]["state"] == "running"

    gate.write_text("go")
    ids = [i["session"] for i in rep["items"]]
    assert pa("wait", "--timeout", "60", *ids, env=env).returncode == 0
    p = pa("reduce", "gated", "--cmd", "true", "--json", env=env)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    # No records: each outcome is derived (success: the turn ended idle) and merged.
    assert [e["key"] for e in res["merged"]] == ["1", "2", "3"]
    p = pa("reduce", res["group"]["name"], "--cmd", "true", env=env)
    assert p.returncode == 2 and "not a map group" in p.stderr

"""Issue 15 §1 in the dashboard: the Plans view lists the plans and draws one as a graph
(tasks as nodes in columns by dependency depth, coloured by state, an arrow per
depends_on, a dashed line per conflicts_with), live as the plan's command agents end;
a node opens its session. The screenshot is docs/img/dashboard-plan.png."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .conftest import Server, js_wait, shot

# Each task's agent waits for its gate file, then writes its own file and ends.
AGENT = r"""
import os, sys, time
me, gate = sys.argv[1], sys.argv[2]
while not os.path.exists(gate):
    time.sleep(0.05)
with open(me + ".txt", "w") as f:
    f.write(me + "\n")
print("wrote", me)
"""


def _plan(tmp_path: Path, gates: dict[str, Path]) -> str:
    agent = tmp_path / "plan_agent.py"
    agent.write_text(AGENT)
    deps = {"schema": [], "api": ["schema"], "ui": ["schema"], "docs": ["api"]}
    lines = ['name = "login"', 'description = "the login feature"', "[defaults]", 'repo = "webapp"']
    lines += ['agent = "command"', "auto_merge = true"]
    for key, on in deps.items():
        cmd = [sys.executable, str(agent), key, str(gates[key])]
        lines += ["[[tasks]]", f'id = "{key}"', f'prompt = "build the {key}"']
        lines += [f"cmd = {json.dumps(cmd)}", f"depends_on = {json.dumps(on)}"]
        if key == "docs":
            lines.append('conflicts_with = ["ui"]')
    return "\n".join(lines) + "\n"


def _node_state(key: str) -> str:
    return f"document.querySelector('g.pnode[data-key=\"{key}\"]')?.dataset.state"


def test_plan_graph_live(server: Server, page: Any, tmp_path: Path) -> None:
    """issue 15 §1: a plan of 4 tasks (api and ui after schema, docs after api, docs
    conflicting with ui) is drawn as 4 nodes in 3 columns with 3 dependency arrows and
    one dashed conflict line; as the agents end, the nodes change state (running →
    merged, purple) without a reload; clicking a node opens its session."""
    server.repo("webapp")
    gates = {k: tmp_path / f"gate-{k}" for k in ("schema", "api", "ui", "docs")}
    try:
        _graph(server, page, tmp_path, gates)
    finally:
        for g in gates.values():
            g.write_text("go")  # never leave an agent waiting


def _graph(server: Server, page: Any, tmp_path: Path, gates: dict[str, Path]) -> None:
    rep = server.api("POST", "/plans", {"text": _plan(tmp_path, gates), "source": "login.toml"})
    gid = rep["plan"]["id"]

    page.click('nav.views a[data-view="plans"]')
    page.get_by_role("link", name="login").click()
    js_wait(page, "() => document.querySelectorAll('svg.plan-graph g.pnode').length === 4")
    assert page.locator(".plan-head strong").inner_text() == "login"
    assert page.locator("svg.plan-graph path.edge.dep").count() == 3
    assert page.locator("svg.plan-graph path.edge.conflict").count() == 1
    edges = {
        (e.get_attribute("data-from"), e.get_attribute("data-to"))
        for e in page.locator("svg.plan-graph path.edge.dep").all()
    }
    assert edges == {("schema", "api"), ("schema", "ui"), ("api", "docs")}
    # Columns by depth: schema, then api and ui, then docs.
    xs = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('g.pnode')].map("
        "(g) => [g.dataset.key, g.transform.baseVal[0].matrix.e]))"
    )
    assert xs["schema"] < xs["api"] == xs["ui"] < xs["docs"], xs

    # schema runs (its session shown on its node), the rest wait for it.
    js_wait(page, f"() => {_node_state('schema')} === 'running'", timeout=30_000)
    assert page.locator('g.pnode[data-key="api"]').get_attribute("class") == "pnode st-waiting"
    assert page.locator('g.pnode[data-key="api"] .pn-merged').count() == 0
    sid = page.locator('g.pnode[data-key="schema"]').get_attribute("data-session")
    assert sid and sid in page.locator('g.pnode[data-key="schema"] .pn-session').text_content()

    # schema's agent ends: merged (auto_merge), drawn so live; api and ui start.
    gates["schema"].write_text("go")
    js_wait(page, f"() => {_node_state('schema')} === 'merged'", timeout=60_000)
    node = page.locator('g.pnode[data-key="schema"]')
    assert "st-merged" in (node.get_attribute("class") or "")
    assert node.locator(".pn-merged").count() == 1  # the merged mark
    fill = page.evaluate(
        "() => getComputedStyle(document.querySelector('g.pnode[data-key=\"schema\"] rect')).fill"
    )
    merged = page.evaluate(
        "() => { const d = document.createElement('div'); d.style.color = 'var(--st-merged)';"
        " document.body.append(d); const c = getComputedStyle(d).color; d.remove(); return c; }"
    )
    assert fill == merged
    js_wait(
        page,
        f"() => {_node_state('api')} === 'running' && {_node_state('ui')} === 'running'",
        timeout=30_000,
    )
    gates["api"].write_text("go")
    js_wait(page, f"() => {_node_state('api')} === 'merged'", timeout=60_000)
    # docs may start only when ui is not running (conflicts_with): it still waits.
    assert page.evaluate(f"() => {_node_state('docs')}") == "waiting"
    page.mouse.move(0, 0)  # no hover outline in the picture
    shot(page, "plan")  # scripts/screenshots.sh copies it to docs/img/dashboard-plan.png

    gates["ui"].write_text("go")
    gates["docs"].write_text("go")
    js_wait(
        page,
        "() => [...document.querySelectorAll('g.pnode')].every((g) => g.dataset.state === 'merged')"
        " && document.querySelector('.plan-head .badge')?.textContent === 'finished'",
        timeout=90_000,
    )

    # A node opens its task's session.
    docs_sid = page.locator('g.pnode[data-key="docs"]').get_attribute("data-session")
    page.locator('g.pnode[data-key="docs"]').click()
    js_wait(page, f"() => location.hash.startsWith('#/s/{docs_sid}')")
    page.locator("#view-session").wait_for(state="visible")
    assert server.session(docs_sid)["title"].startswith("login/docs")

    # The list of plans shows it finished with its 4 tasks.
    page.click('nav.views a[data-view="plans"]')
    row = page.locator(f'.plans-table tr[data-plan="{gid}"]')
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "finished"
    assert row.locator("td").nth(3).inner_text() == "4 merged"


# Writes its own line into shared.txt: two such tasks collide.
SHARED = r"""
import sys
with open("shared.txt", "w") as f:
    f.write(sys.argv[1] + " was here\n")
print("wrote shared.txt")
"""


def test_the_graph_flags_tasks_the_forecast_says_collide(
    server: Server, page: Any, tmp_path: Path
) -> None:
    """issue 15 §1: two tasks of a plan that both write shared.txt, with no conflicts_with
    between them, are flagged by the conflict forecast; the graph marks both nodes (⚠,
    the flag's note in its tooltip) while they wait for review, and an unflagged plan
    task has no mark."""
    server.repo("forecast")
    agent = tmp_path / "shared_agent.py"
    agent.write_text(SHARED)
    lines = ['name = "collide"', "[defaults]", 'repo = "forecast"', 'agent = "command"']
    for key, cmd in (
        ("left", [sys.executable, str(agent), "left"]),
        ("right", [sys.executable, str(agent), "right"]),
        ("alone", [sys.executable, "-c", "open('alone.txt', 'w').write('x')"]),
    ):
        lines += ["[[tasks]]", f'id = "{key}"', f'prompt = "task {key}"', f"cmd = {json.dumps(cmd)}"]
    rep = server.api("POST", "/plans", {"text": "\n".join(lines) + "\n", "source": "c.toml"})
    assert rep["plan"]["name"] == "collide"

    page.click('nav.views a[data-view="plans"]')
    page.get_by_role("link", name="collide").click()
    flagged = (
        "() => ['left', 'right'].every((k) => document.querySelector("
        "`g.pnode[data-key=\"${k}\"]`)?.classList.contains('flagged'))"
    )
    js_wait(page, flagged, timeout=90_000)
    for key, other in (("left", "right"), ("right", "left")):
        mark = page.locator(f'g.pnode[data-key="{key}"] .pn-flag')
        assert (mark.text_content() or "").endswith("⚠")
        assert f"collides with task {other} in shared.txt" in (
            mark.locator("title").text_content() or ""
        )
    js_wait(page, f"() => {_node_state('alone')} === 'done'", timeout=60_000)
    assert page.locator('g.pnode[data-key="alone"] .pn-flag').count() == 0

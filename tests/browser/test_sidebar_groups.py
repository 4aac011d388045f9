"""Issue 15 §1 in the dashboard's sidebar: the sessions of a plan, and of a best-of-N
attempts group, are listed under their own heading (`repo › kind name`) inside their
repo, plain sessions under the repo's heading. The screenshot is
docs/img/dashboard-sidebar-groups.png."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import FAKE_AGENT, Server, js_wait, shot


def _plan_text() -> str:
    cmd = json.dumps([sys.executable, str(FAKE_AGENT)])
    return (
        'name = "signup"\n[defaults]\nrepo = "shop"\nagent = "command"\nafter = "done"\n'
        f'cmd = {cmd}\n'
        '[[tasks]]\nid = "form"\nprompt = "add the signup form delay=0.2 file=form.txt"\n'
        '[[tasks]]\nid = "mail"\nprompt = "send the welcome mail delay=0.2 file=mail.txt"\n'
        'depends_on = ["form"]\n'
    )


def _rows(page: Any, group: str) -> list[str]:
    """The session ids listed under one sidebar heading (``.group`` element selector)."""
    return list(
        page.evaluate(
            "(sel) => [...document.querySelectorAll(sel + ' .item')].map((e) => e.dataset.id)",
            group,
        )
    )


def test_a_plans_and_an_attempts_sessions_under_their_own_headings(
    server: Server, page: Any, tmp_path: Path
) -> None:
    """issue 15 §1: the plan's two sessions under `shop › plan signup`, the attempts
    group's three under `shop › attempts NAME`, the two plain sessions under `shop`."""
    server.repo("shop")
    plain = [s["id"] for s in server.start("shop", "tidy the README delay=0.2", count=2)]
    rep = server.api("POST", "/plans", {"text": _plan_text(), "source": "signup.toml"})
    plan_id = rep["plan"]["id"]
    att = server.api(
        "POST",
        "/attempts",
        {
            "prompt": "fix the checkout rounding delay=0.2 file=checkout.txt",
            "attempts": 3,
            "repo": "shop",
            "cmd": [sys.executable, str(FAKE_AGENT)],
        },
    )
    att_id, att_name = att["group"]["id"], att["group"]["name"]
    att_sids = sorted(s["id"] for s in att["sessions"])

    # The plan's second task starts once the first is done: wait for both sessions.
    def plan_sessions() -> list[str]:
        tasks = server.api("GET", f"/plans/{plan_id}")["tasks"]
        return [t["session"] for t in tasks if t["session"]]

    deadline = time.monotonic() + 90
    while len(plan_sids := plan_sessions()) < 2:
        assert time.monotonic() < deadline, "the plan's second task did not start"
        time.sleep(0.1)
    assert len(plan_sids) == 2
    for sid in plain + att_sids + plan_sids:
        server.wait(sid, "idle", timeout=60)

    plan_sel = f'#session-list .group[data-group="{plan_id}"]'
    att_sel = f'#session-list .group[data-group="{att_id}"]'
    repo_sel = '#session-list .group[data-repo="shop"]:not([data-group])'
    js_wait(
        page,
        f"() => document.querySelectorAll('{plan_sel} .item').length === 2"
        f" && document.querySelectorAll('{att_sel} .item').length === 3",
        timeout=30_000,
    )
    head = page.locator(f"{plan_sel} .group-head")
    assert " ".join((head.text_content() or "").split()) == "shop › plan signup2"  # the count last
    assert page.locator(f"{plan_sel} .group-name").text_content() == "signup"
    assert sorted(_rows(page, plan_sel)) == sorted(plan_sids)
    head = page.locator(f"{att_sel} .group-head")
    assert " ".join((head.text_content() or "").split()) == f"shop › attempts {att_name}3"
    assert sorted(_rows(page, att_sel)) == att_sids
    assert sorted(_rows(page, repo_sel)) == sorted(plain)
    # The repo's own heading first, its groups right after it.
    order = page.evaluate(
        "() => [...document.querySelectorAll('#session-list .group')].map("
        "(g) => g.dataset.group || g.dataset.repo)"
    )
    assert order[0] == "shop" and set(order[1:]) == {plan_id, att_id}, order
    shot(page, "sidebar-groups")  # scripts/screenshots.sh: docs/img/dashboard-sidebar-groups.png

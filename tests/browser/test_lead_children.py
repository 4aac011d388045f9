"""Issue 18 in the dashboard: a lead session with the sessions it started (``parent``)
nested under it in the sidebar, and the session view's links to its lead and its
children. The screenshot is docs/img/dashboard-lead.png."""

from __future__ import annotations

from typing import Any

from .conftest import Server, js_wait, shot


def _order(page: Any) -> list[str]:
    return list(
        page.evaluate(
            "() => [...document.querySelectorAll('#session-list .group[data-repo=\"crm\"]"
            " .item')].map((e) => e.dataset.id)"
        )
    )


def test_a_lead_with_its_children_nested_and_linked(server: Server, page: Any) -> None:
    """issue 18: the lead's two children are listed right under it, indented and marked
    (↳, "lead · 2 children"), an unrelated newer session is not; the lead's view links to
    both children, a child's view to its lead, and the links open them."""
    [lead] = server.start("crm", "Lead: split the import into two tasks delay=0.2 file=PLAN.md",
                          title="Lead: import customers from CSV")  # fmt: skip
    kids = [
        server.start("crm", f"{t} delay=0.2 file={f}", title=t, parent=lead["id"])[0]
        for t, f in (("Parse the CSV rows", "parse.py"), ("Deduplicate customers", "dedup.py"))
    ]
    [other] = server.start("crm", "Fix the date filter delay=0.2", title="Fix the date filter")
    for s in (lead, *kids, other):
        server.wait(s["id"], "idle", timeout=60)
    ids = [lead["id"], kids[0]["id"], kids[1]["id"]]
    js_wait(
        page,
        "() => document.querySelectorAll('#session-list .item.child').length === 2",
        timeout=30_000,
    )
    order = _order(page)
    at = order.index(lead["id"])
    assert order[at : at + 3] == ids, order  # children right under the lead, oldest first
    lead_row = page.locator(f'#session-list .item[data-id="{lead["id"]}"]')
    assert "lead" in (lead_row.get_attribute("class") or "")
    assert lead_row.locator(".kin").text_content() == "lead · 2 children"
    for k in kids:
        row = page.locator(f'#session-list .item[data-id="{k["id"]}"]')
        assert "child" in (row.get_attribute("class") or "")
    other_row = page.locator(f'#session-list .item[data-id="{other["id"]}"]')
    assert "child" not in (other_row.get_attribute("class") or "")

    lead_row.click()
    kin = page.locator("#view-session .s-head .kin")
    kin.locator('a[data-kin="child"]').first.wait_for()
    links = kin.locator('a[data-kin="child"]')
    assert [links.nth(i).get_attribute("data-id") for i in range(links.count())] == ids[1:]
    assert "started 2 sessions" in (kin.text_content() or "")
    shot(page, "lead")  # scripts/screenshots.sh: docs/img/dashboard-lead.png
    links.nth(1).click()
    js_wait(page, f"() => location.hash === '#/s/{kids[1]['id']}'")
    up = page.locator('#view-session .s-head .kin a[data-kin="parent"]')
    up.wait_for()
    assert up.get_attribute("data-id") == lead["id"]
    assert "Lead: import customers" in (up.text_content() or "")
    up.click()
    js_wait(page, f"() => location.hash === '#/s/{lead['id']}'")

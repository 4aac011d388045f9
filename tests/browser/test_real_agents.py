"""The acceptance flow with real agent CLIs: four Claude Code sessions (the CLI from
scripts/install-agents.sh) answered by pa's scripted model server, as in `pa demo`, watched
live in the browser: statuses go idle without a reload, the conversation shows the agent's
messages, tool calls and file changes, and the diff tab shows the changed file.

Skipped when the agent CLIs are not installed (scripts/install-agents.sh)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Server, js_wait, shot

AGENT = os.environ.get("PA_BROWSER_AGENT", "claude")


@pytest.fixture(scope="module")
def demo(server: Server) -> Iterator[dict[str, Any]]:
    from parallel_agents.config import load_settings
    from parallel_agents.ops import demo as demo_mod
    from parallel_agents.sessions.orchestrator import App
    from parallel_agents.testing import ScriptedModelServer, agent_env, find_agent

    binary = find_agent(AGENT)
    if binary is None:
        pytest.skip(f"the {AGENT} CLI is not installed: run scripts/install-agents.sh")
    settings = load_settings()
    settings.home = server.home
    settings.data.setdefault("agents", {}).setdefault(AGENT, {})["binary"] = str(binary)
    app = App.open(settings)
    # The server starts the queued sessions (and owns their processes), not this test.
    app.sup.schedule = lambda: 0  # type: ignore[method-assign]
    run = secrets.token_hex(3)
    repo = demo_mod.make_sample_repo(server.base / f"calc-{run}")
    app.add_repo(repo, name="calc")
    tasks = demo_mod.tasks()
    script = [{"match": f"pa-browser-{t.key}-{run}", "turns": t.turns} for t in tasks]
    model = ScriptedModelServer(script).start()
    try:
        yield {
            "app": app,
            "tasks": tasks,
            "run": run,
            "model": model,
            "repo": repo,
            "env": lambda key: agent_env(
                AGENT,
                server.base / "agent-homes" / f"{key}-{run}",
                server_url=model.url,
                api_key=f"pa-browser-{key}-{run}",
                workdir=None,
            ),
        }
    finally:
        model.stop()
        app.close()


def test_four_real_agents_live(server: Server, page: Any, demo: dict[str, Any]) -> None:
    app = demo["app"]
    page.evaluate("() => { window.__sameDocument = true }")
    ids = []
    for t in demo["tasks"]:
        env = demo["env"](t.key)
        env["PATH"] = (
            str(os.path.dirname(app.settings.agent_settings(AGENT)["binary"]))
            + ":"
            + env.get("PATH", "/usr/bin:/bin")
        )
        s = app.new_session(t.prompt, repo="calc", agent=AGENT, title=t.title, env=env)
        ids.append(s.id)
    for sid in ids:
        page.locator(f'.item[data-id="{sid}"]').wait_for()
    for sid in ids:
        js_wait(
            page,
            f"""() => document.querySelector('.item[data-id="{sid}"] .badge')
                     ?.textContent === 'idle'""",
            timeout=90_000,
        )
    assert page.evaluate("() => window.__sameDocument") is True
    # Cost from the agents' usage reports reaches the sidebar.
    js_wait(
        page,
        f"""() => document.querySelector('.item[data-id="{ids[0]}"] .cost')
                           ?.textContent.startsWith('$')""",
    )
    shot(page, "sidebar")
    # The conversation as the agent lived it.
    page.locator(f'.item[data-id="{ids[0]}"]').click()
    convo = page.locator("#view-session .convo")
    convo.locator(".ev.message .md", has_text="Let me look at calc.py.").wait_for()
    assert "Bash" in convo.locator("details.tool summary").first.inner_text()
    convo.locator(".ev.file a", has_text="calc.py").wait_for()
    assert convo.locator(".ev.file a").first.inner_text() == "calc.py"
    convo.locator(".ev.message .md", has_text="it now returns a + b").wait_for()
    convo.locator(".ev.done").wait_for()  # the result repeats the last message: shown once
    convo.locator("details.tool summary").first.click()
    assert "def add(a, b)" in convo.locator("details.tool .body").first.inner_text()
    shot(page, "session")
    if server.has_route("get", "/sessions/{sid}/diff"):
        convo.locator(".ev.file a", has_text="calc.py").first.click()
        page.locator(".d2h-file-wrapper .d2h-file-name", has_text="calc.py").wait_for()
        assert "return a + b" in page.locator(".diff-out").inner_text()
        assert page.locator(".diff-out .hljs-keyword").count() > 0  # syntax highlighted
        shot(page, "diff")

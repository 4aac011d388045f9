"""Issue 18: docs/mcp.md documents exactly the MCP server's tools, each with every input
and output field, and its resources."""

from __future__ import annotations

import asyncio
import re

from parallel_agents.config import Settings
from parallel_agents.mcp_server.tools import Tools
from parallel_agents.mcp_server.verbs import build
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "mcp.md").read_text(encoding="utf-8")


def _sections() -> dict[str, str]:
    parts = re.split(r"^## ", DOC, flags=re.M)[1:]
    out = {}
    for p in parts:
        head, _, body = p.partition("\n")
        m = re.fullmatch(r"`(\w+)`", head.strip())
        if m:
            out[m.group(1)] = body
    return out


def test_the_doc_lists_exactly_the_servers_tools_and_their_fields() -> None:
    """issue 18: a `## `name`` section per tool, no more, no fewer; each names every input
    property and every output property in backticks."""
    mcp = build(Tools(None, Settings()))  # type: ignore[arg-type]  # listing calls no backend
    tools = asyncio.run(mcp.list_tools())
    sections = _sections()
    assert set(sections) == {t.name for t in tools}
    for t in tools:
        body = sections[t.name]
        for name in t.inputSchema.get("properties", {}):
            assert f"`{name}`" in body, (t.name, "input", name)
        outputs = (t.outputSchema or {}).get("properties", {})
        assert outputs, t.name
        if set(outputs) == {"id", "title", "status", "repo", "branch", "worktree", "agent",
                            "error", "parent", "summary"}:
            assert "the session" in body or "one session" in body.lower(), t.name
            continue
        for name in outputs:
            assert f"`{name}`" in body, (t.name, "output", name)
    templates = asyncio.run(mcp.list_resource_templates())
    for r in templates:
        assert f"`{r.uriTemplate}`" in DOC

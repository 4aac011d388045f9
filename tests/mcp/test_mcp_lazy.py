"""Issue 18: the MCP SDK loads only when an MCP server runs: `pa ls` (in-process, which
builds the server's app) imports neither it nor pa's mcp_server; that in-process app,
running no lifespan, answers /mcp with a plain 503."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from parallel_agents.server.app import create_app

CODE = (
    "import json, sys\n"
    "from parallel_agents.cli import main\n"
    "try:\n"
    "    main(['ls'], prog_name='pa')\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
)


def test_pa_ls_imports_no_mcp(pa_home: Path) -> None:
    """issue 18: `pa ls` (working in-process here) loads no `mcp` module."""
    p = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    mods = json.loads(p.stderr.strip().splitlines()[-1])
    assert "parallel_agents.server.app" in mods  # the in-process app was built
    loaded = [m for m in mods if m == "mcp" or m.startswith(("mcp.", "parallel_agents.mcp_server"))]
    assert loaded == []


def test_the_in_process_app_answers_mcp_with_503(pa_home: Path) -> None:
    """issue 18: without the running server's lifespan, /mcp says so (after the token)."""
    app = create_app(pa_home)
    app.state.pa.bind("127.0.0.1", 7317)
    bearer = {"Authorization": f"Bearer {app.state.pa.token}"}

    async def go() -> tuple[httpx.Response, httpx.Response]:
        # httpx's ASGI transport runs no lifespan, as the in-process client does not.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7317") as c:
            return await c.post("/mcp", json={}), await c.post("/mcp", json={}, headers=bearer)

    bare, with_token = asyncio.run(go())
    assert bare.status_code == 401
    assert with_token.status_code == 503
    assert with_token.json()["hint"] == "pa server start"

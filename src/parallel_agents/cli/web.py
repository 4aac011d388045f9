"""``pa up``: start the server if needed and open the dashboard with a one-time login link.

``open_dashboard`` is what ``pa demo`` (or any other command) calls to offer the same at
its end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def open_dashboard(
    home: Path | None = None,
    *,
    open_browser: bool = True,
    host: str | None = None,
    port: int | None = None,
) -> dict[str, Any]:
    """Ensure a server runs for ``home``; return its URL and a fresh one-time login link.

    Opens the link in the default browser when ``open_browser`` (``opened`` says whether a
    browser took it).
    """
    from parallel_agents.client import start_background
    from parallel_agents.config import pa_home
    from parallel_agents.server import login as once

    h = Path(home) if home is not None else pa_home()
    info, started = start_background(h, host, port)
    code = once.issue(h)
    login = f"{info.url}/login/once?code={code}"
    opened = False
    if open_browser:
        import webbrowser

        try:
            opened = bool(webbrowser.open(login, new=2))
        except webbrowser.Error:
            opened = False
    return {
        "url": info.url,
        "login_url": login,
        "expires_in": int(once.TTL),
        "pid": info.pid,
        "started": started,
        "opened": opened,
    }


@click.command("up")
@click.option("--host", help="Address for a new server (default: setting server.host).")
@click.option(
    "--port",
    type=int,
    help="Port for a new server; busy is an error (default: setting server.port, or any"
    " free port when that one is busy).",
)
@click.option("--no-open", is_flag=True, help="Print the link; do not open a browser.")
@click.option("--json", "as_json", is_flag=True, help="Print url, login_url, pid as JSON.")
def up(host: str | None, port: int | None, no_open: bool, as_json: bool) -> None:
    """Start the server if needed and open the web dashboard.

    Prints a one-time login link (valid 10 minutes, good for one browser); the browser
    keeps an HttpOnly session cookie afterwards. Run it again for a new link.
    """
    d = open_dashboard(open_browser=not no_open and not as_json, host=host, port=port)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(
        f"pa server {'started' if d['started'] else 'running'} on {d['url']} (pid {d['pid']})"
    )
    click.echo(f"dashboard: {d['login_url']}")
    click.echo(f"  (one-time login link, valid {d['expires_in'] // 60} minutes)")
    if not no_open and not d["opened"]:
        click.echo("no browser could be opened here: open the link above yourself", err=True)


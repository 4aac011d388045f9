"""CLI commands for the server: ``pa serve``, ``pa server start|stop|status``, ``pa watch``.

The background server is ``python -m parallel_agents serve`` (see server/daemon.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click


def _fmt_uptime(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h {m}m"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def _one_time_login(home: Any, url: str) -> str:
    """A login link good for one use and a few minutes: unlike ``/login?token=``, it is
    worthless once it sits in a browser's history, a synced tab or a terminal log."""
    from parallel_agents.server import login as once

    return f"{url}/login/once?code={once.issue(home)}"


def exposure_warning(host: str | None) -> str | None:
    """A warning when the server listens beyond loopback: it speaks plain HTTP."""
    import ipaddress

    h = (host or "127.0.0.1").strip("[]").lower()
    if h == "localhost":
        return None
    try:
        if ipaddress.ip_address(h).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"warning: the server listens on {h} over plain HTTP: the login cookie and every"
        " prompt, diff and output cross the network unencrypted; bind 127.0.0.1 and reach"
        " it through `ssh -L` or a TLS proxy"
    )


def _status_json(home: Any) -> dict[str, Any] | None:
    from parallel_agents.client import healthy
    from parallel_agents.server import daemon
    from parallel_agents.server.auth import read_token

    info = daemon.status(home)
    if info is None:
        return None
    token = read_token(home) or ""
    d = info.to_json()
    d.update(
        running=True,
        uptime=round(info.uptime, 1),
        login_url=_one_time_login(home, info.url),
        healthy=healthy(info, token) if token else False,
    )
    warning = exposure_warning(info.host)
    if warning:
        d["warning"] = warning
    return d


def _print_status(d: dict[str, Any]) -> None:
    state = "running" if d.get("healthy") else "running (not answering)"
    click.echo(f"pa server {state}")
    for label, key in (
        ("pid", "pid"),
        ("url", "url"),
        ("port", "port"),
        ("version", "version"),
        ("home", "home"),
    ):
        click.echo(f"  {label:<8} {d[key]}")
    click.echo(f"  {'uptime':<8} {_fmt_uptime(float(d['uptime']))}")
    click.echo(f"  {'login':<8} {d['login_url']}")
    click.echo("           (one-time login link, valid 10 minutes; run again for a new one)")
    if d.get("warning"):
        click.secho(str(d["warning"]), fg="yellow", err=True)


@click.command()
@click.option("--host", help="Address to listen on (default: setting server.host, 127.0.0.1).")
@click.option(
    "--port",
    type=int,
    help="Port; busy is an error (default: setting server.port, 7317, or any free port when"
    " that one is busy; 0 picks a free one).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the log here (rotated at 5 MB) instead of stderr.",
)
def serve(host: str | None, port: int | None, log_level: str, log_file: Path | None) -> None:
    """Run the server in the foreground (one per PA_HOME)."""
    from parallel_agents.server import daemon

    def ready(info: daemon.ServerInfo, token: str) -> None:
        click.echo(f"pa server {info.version} on {info.url} (pid {info.pid})", err=True)
        warning = exposure_warning(info.host)
        if warning:
            click.echo(warning, err=True)
        if sys.stderr.isatty():
            click.echo(f"open {_one_time_login(Path(info.home), info.url)}", err=True)
        else:
            click.echo("`pa server status` prints a one-time login link", err=True)

    daemon.run(host=host, port=port, log_level=log_level, log_file=log_file, on_ready=ready)


@click.group("server")
def server_group() -> None:
    """Start, stop and inspect the background server."""


@server_group.command("start")
@click.option("--host", help="Address to listen on (default: setting server.host).")
@click.option(
    "--port",
    type=int,
    help="Port; busy is an error (default: setting server.port, or any free port when that"
    " one is busy; 0: a free one).",
)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait until it answers.",
)
@click.option(
    "--runtime",
    type=click.Choice(["local", "ray"]),
    help="Where its sessions run unless `pa new --runtime` says (default: setting runtime.kind).",
)
@click.option(
    "--ray-address", metavar="ADDR", help="The Ray cluster (setting runtime.ray.address)."
)
@click.option("--json", "as_json", is_flag=True)
def server_start(
    host: str | None,
    port: int | None,
    timeout: float,
    runtime: str | None,
    ray_address: str | None,
    as_json: bool,
) -> None:
    """Start the server in the background (if it is not running) and wait until it answers.

    With --runtime ray the Ray cluster must answer first (nothing is started otherwise)."""
    import os

    from parallel_agents.client import start_background
    from parallel_agents.config import load_settings, pa_home
    from parallel_agents.server import daemon

    home = pa_home()
    # The server started below reads these (config.load_settings): its sessions' runtime.
    if runtime:
        os.environ["PA_RUNTIME"] = runtime
    if ray_address:
        os.environ["PA_RAY_ADDRESS"] = ray_address
    settings = load_settings()
    if settings.runtime_kind() == "ray":
        from parallel_agents.runtime.ray_runtime import connect, namespace_for

        connect(settings.ray_address(), namespace_for(home))
    _, started = start_background(home, host, port, timeout=timeout)
    d = _status_json(home)
    if d is None:  # it died right after answering
        raise daemon.ServerNotRunning(
            "the server stopped right after starting", hint=f"see {home / daemon.LOG_FILE}"
        )
    d["started"] = started
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    if not started:
        click.echo("already running")
    _print_status(d)


@server_group.command("stop")
@click.option("--json", "as_json", is_flag=True)
def server_stop(as_json: bool) -> None:
    """Stop the background server (agents keep running; a new server picks them up)."""
    from parallel_agents.config import pa_home
    from parallel_agents.server import daemon

    info = daemon.stop(pa_home())
    if as_json:
        click.echo(json.dumps({"stopped": info is not None, "pid": info.pid if info else None}))
    elif info is None:
        click.echo("no server running")
    else:
        click.echo(f"stopped the server (pid {info.pid}, {info.url})")


@server_group.command("status")
@click.option("--json", "as_json", is_flag=True)
def server_status(as_json: bool) -> None:
    """Pid, URL, port, version, uptime and a one-time login link (valid 10 minutes, good
    for one browser; the token itself is never printed) of the server (exit 1 if none
    runs). Warns when the server listens beyond loopback over plain HTTP."""
    from parallel_agents.config import pa_home

    d = _status_json(pa_home())
    if as_json:
        click.echo(json.dumps(d if d is not None else {"running": False}, indent=2))
    elif d is None:
        click.echo("no server running (start one with `pa server start`)")
    else:
        _print_status(d)
    if d is None:
        sys.exit(1)


_MARK = {"needs_input": "?", "idle": "✓", "failed": "✗", "interrupted": "!"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def watch(as_json: bool) -> None:
    """Print sessions that need you (needs input, finished, failed, interrupted) as it happens.

    Starts the server in the background if none runs. Ctrl-C to stop.
    """
    from parallel_agents.client import ensure_server
    from parallel_agents.errors import PAError

    client = ensure_server()
    connects = 0

    def connected() -> None:
        nonlocal connects
        connects += 1
        verb = "watching" if connects == 1 else "reconnected to"
        click.echo(f"{verb} {client.url} for sessions that need you (Ctrl-C to stop)", err=True)

    for ev in client.stream(kinds=["attention"], on_connect=connected):
        status = str(ev.get("payload", {}).get("status", ""))
        try:
            s: dict[str, Any] | None = client.get_session(ev["session_id"])
        except PAError:
            s = None
        if as_json:
            out = dict(ev)
            if s is not None:
                out["session"] = {
                    k: s.get(k)
                    for k in ("id", "title", "repo_name", "agent", "status", "error", "branch")
                }
            click.echo(json.dumps(out, ensure_ascii=False))
            continue
        when = time.strftime("%H:%M:%S", time.localtime(float(ev.get("ts") or time.time())))
        title = (s or {}).get("title", "")
        repo = (s or {}).get("repo_name", "")
        err = (s or {}).get("error") if status in ("failed", "interrupted") else None
        line = f"{when}  {_MARK.get(status, '·')} {ev['session_id']}  {status:<11}  {repo}  {title}"
        if err:
            line += f"  — {str(err).strip().splitlines()[0][:120]}"
        click.echo(line)


"""How commands print: JSON, tables (rich on a terminal, tab-separated otherwise), and
user text made safe for the terminal.

Only the standard library and click at import: rich is imported when a table is drawn
on a terminal, so `pa ls --json` never loads it.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

import click


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def tty() -> bool:
    return sys.stdout.isatty()


def table(columns: list[str], rows: Iterable[list[str]], *, title: str | None = None) -> None:
    rows = list(rows)
    if tty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, show_edge=False, pad_edge=False, box=None, header_style="bold")
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*r)
        Console().print(t)
    else:
        click.echo("\t".join(columns))
        for r in rows:
            click.echo("\t".join(c.replace("\t", " ").replace("\n", " ") for c in r))


_STATUS_STYLE = {
    "running": "cyan",
    "starting": "cyan",
    "queued": "dim",
    "needs_input": "bold yellow",
    "idle": "green",
    "failed": "bold red",
    "stopped": "magenta",
    "interrupted": "yellow",
    "merged": "blue",
    "discarded": "dim",
}


# C0 controls but tab and newline, DEL, and C1 controls: a terminal acts on these.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with terminal control characters shown as escapes (``\\x1b``), so a
    title or prompt can never move the cursor, retitle the window or change colours."""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return out if keep_newlines else out.replace("\n", "\\n")


def text_cell(text: str) -> str:
    """A table cell of user text: escaped for the terminal, and for rich's markup on a tty."""
    safe = printable(text)
    if tty():
        from rich.markup import escape

        return escape(safe)
    return safe


def status_cell(status: str) -> str:
    if tty():
        return f"[{_STATUS_STYLE.get(status, '')}]{status}[/]"
    return status


def ago(ts: float) -> str:
    d = max(0.0, time.time() - ts)
    if d < 60:
        return f"{d:.0f}s"
    if d < 3600:
        return f"{d / 60:.0f}m"
    if d < 86400:
        return f"{d / 3600:.1f}h"
    return f"{d / 86400:.1f}d"


def run_lines(r: dict[str, Any]) -> list[tuple[str, str]]:
    """What `pa run` and `pa show` print of a run script's status (issue 16 §1)."""
    if not r.get("log"):
        return []
    if not r["running"]:
        return [("run", f"stopped (log {r['log']})")]
    lines = [("run", f"running, pid {r['pid']} (log {r['log']})")]
    urls = r.get("urls") or []
    lines += [("url", u) for u in urls]
    if not urls and r.get("ports"):
        lines.append(("url", "not answering on any of its ports yet"))
    return lines

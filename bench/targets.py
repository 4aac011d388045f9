"""Issue 14's targets, read from one run's results: the figure, its baseline, pass or fail.

Each target names where its figure lives in the results dict that ``python -m bench``
writes (bench/results/pa.json). A figure that is not there (its section was skipped with
``--only``, or the module that measures it does not exist yet) is "not measured", never a
pass. Ratios are computed here from the two medians rather than read from a rounded
``ratio`` field, so 1.54× cannot pass a 1.5× target by rounding.

Result keys read (``a.b`` is ``res["a"]["b"]``); the ones marked *new* are filled by the
bench modules of issue 14:

- spawn: ``spawn.single`` (run_spawn: ``files``, ``cli_s``/``raw_s`` stats, ``reps``) or
  ``spawn.by_size``: a list of ``{"files", "pa_s", "git_s", "reps"}``, one per
  repository size: medians (seconds) of ``pa new`` → agent running without a pool and of raw
  ``git worktree add``, alternating, ``reps`` runs each. Without it, today's 1-session row
  of ``spawn.rows`` (via the server) at ``spawn.files``.
- pool: ``pool.default`` *new*: ``{"enabled", "held", "bytes", "budget_bytes"}`` of a home
  with default settings after one use of a repository.
- status latency: ``server.latency`` (bench_server.py): the entry with the most sessions,
  ``p95_ms``; its 1-session entry is the baseline shown.
- diff: ``diff.pa_diff_s.median`` against ``diff.git_diff_s.median``.
- storage *new*: ``storage.output_bytes`` (what the agent wrote) and ``storage.stored_bytes``
  (growth of pa.db with its -wal plus the session folder); ``storage.cap``:
  ``{"limit_bytes", "written_bytes", "stored_bytes", "cut_reported"}`` for an agent writing
  more than the cap.
- scale *new*: ``scale.sessions``, ``scale.running``, ``scale.server_rss_mb``,
  ``scale.pa_ls_s`` (stats: ``median``), optional ``scale.python_startup_s`` (stats, the
  baseline shown); ``scale.dashboard``: bench_dashboard.py's result shape
  (``sessions``, ``first_render_ms.median``, ``event_to_shown_ms.p95``) measured at
  ``scale.sessions``; without it, ``dashboard`` (bench_dashboard.py's own run) at its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPAWN_SIZES = (2_000, 5_000, 20_000)
SCALE_SESSIONS = 1_000
STATUS_SESSIONS = 100


@dataclass(frozen=True)
class Reading:
    """One row of the summary: a figure measured under ``where``, against ``baseline``."""

    where: str
    value: float | None = None  # compared with the target; None: not measured
    shown: str = ""  # the figure as printed (default: value with the target's unit)
    baseline: str = "-"
    short: str = ""  # why a present figure still does not count (e.g. too few sessions)


@dataclass(frozen=True)
class Target:
    key: str  # "1", "6b": the issue's numbering
    name: str
    read: Callable[[dict[str, Any]], list[Reading]]
    limit: float
    op: str  # "<=", "<" or ">="
    unit: str  # "×", "ms", "MB", ""
    goal: str  # the target as printed

    def passes(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.limit
        return value <= self.limit if self.op == "<=" else value < self.limit

    def fmt(self, value: float) -> str:
        if self.unit == "×":
            return f"{value:.2f}×"
        if self.unit == "ms":
            return f"{value:,.0f} ms"
        if self.unit == "MB":
            return f"{value:,.0f} MB"
        return f"{value:g}"


def dig(res: dict[str, Any], path: str) -> Any:
    """``res["a"]["b"]`` for ``"a.b"``; None when any step is missing."""
    cur: Any = res
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def _ratio(pa: float | None, base: float | None) -> float | None:
    return pa / base if pa is not None and base else None


# -- readers ------------------------------------------------------------------------------------
def _spawn(res: dict[str, Any]) -> list[Reading]:
    full = bool(res.get("full"))
    measured: dict[int, Reading] = {}
    # bench/run.py's run_spawn writes `single` (stats dicts); `by_size` holds plain medians.
    rows = list(dig(res, "spawn.by_size") or []) + [
        {
            "files": r["files"],
            "pa_s": (r.get("cli_s") or {}).get("median"),
            "git_s": (r.get("raw_s") or {}).get("median"),
            "reps": r.get("reps"),
        }
        for r in dig(res, "spawn.single") or []
    ]
    for r in rows:
        pa, git = _num(r.get("pa_s")), _num(r.get("git_s"))
        reps = f", median of {r['reps']}" if r.get("reps") else ""
        measured[int(r["files"])] = Reading(
            where=f"{int(r['files']):,} files{reps}",
            value=_ratio(pa, git),
            shown=f"{_ms(pa)}",
            baseline=f"{_ms(git)} `git worktree add`",
        )
    if not measured:  # today's shape: the 1-session row through the server
        files = dig(res, "spawn.files")
        for r in dig(res, "spawn.rows") or []:
            if r.get("sessions") == 1 and r.get("mode", "server") == "server" and files:
                pa = _num((r.get("latency_s") or {}).get("median"))
                git = _num(r.get("raw_sequential_s"))
                measured[int(files)] = Reading(
                    where=f"{int(files):,} files, 1 session",
                    value=_ratio(pa, git),
                    shown=_ms(pa),
                    baseline=f"{_ms(git)} `git worktree add`",
                )
    sizes = sorted(set(SPAWN_SIZES) | set(measured)) if full else sorted(measured)
    if not sizes:
        return [Reading(where=" / ".join(f"{s:,}" for s in SPAWN_SIZES) + " files")]
    return [measured.get(s) or Reading(where=f"{s:,} files") for s in sizes]


def _pool(res: dict[str, Any]) -> list[Reading]:
    d = dig(res, "pool.default")
    on = dig(res, "pool.default_on")  # run_pool's own shape
    if not isinstance(d, dict) and isinstance(on, dict) and "held_bytes" in on:
        entry = _num(on.get("entry_bytes")) or 0.0
        held_bytes = _num(on.get("held_bytes")) or 0.0
        d = {
            "enabled": int(on.get("want") or 0) > 0,
            "held": round(held_bytes / entry) if entry else 0,
            "bytes": held_bytes,
            "budget_bytes": on.get("budget_bytes"),
        }
    if not isinstance(d, dict) or "enabled" not in d:
        return [Reading(where="default settings")]
    on, held = bool(d["enabled"]), int(d.get("held") or 0)
    used, budget = _num(d.get("bytes")) or 0.0, _num(d.get("budget_bytes"))
    within = budget is None or used <= budget
    shown = f"{'on' if on else 'off'}, {held} worktree{'s' * (held != 1)} held, {_mb(used)}"
    return [
        Reading(
            where="default settings, after one use of a repo",
            value=1.0 if on and held > 0 and within else 0.0,
            shown=shown,
            baseline=f"budget {_mb(budget)}" if budget is not None else "no budget reported",
        )
    ]


def _status(res: dict[str, Any]) -> list[Reading]:
    rows = [r for r in dig(res, "server.latency") or [] if isinstance(r, dict)]
    rows = [r for r in rows if r.get("sessions")]
    if not rows:
        return [Reading(where=f"{STATUS_SESSIONS} sessions ending together")]
    top = max(rows, key=lambda r: int(r["sessions"]))
    one = next((r for r in rows if r["sessions"] == 1 and _num(r.get("p95_ms"))), None)
    n, seen = int(top["sessions"]), int(top.get("observed", top["sessions"]) or 0)
    p95 = _num(top.get("p95_ms"))
    # A status that never arrived is the worst latency, not a smaller sample.
    value = p95 if p95 is not None and seen >= n else float("inf")
    return [
        Reading(
            where=f"{n} sessions ending together",
            value=value,
            shown="" if value != float("inf") else f"{seen} of {n} statuses seen",
            baseline=f"1 session: {one['p95_ms']:,.0f} ms" if one else "-",
            short="" if n >= STATUS_SESSIONS else f"{n} of {STATUS_SESSIONS} sessions",
        )
    ]


def _diff(res: dict[str, Any]) -> list[Reading]:
    pa, git = _num(dig(res, "diff.pa_diff_s.median")), _num(dig(res, "diff.git_diff_s.median"))
    files, changed = dig(res, "diff.files"), dig(res, "diff.files_changed")
    where = f"{changed} files changed of {files:,}" if files and changed else "same change set"
    return [
        Reading(
            where=where,
            value=_ratio(pa, git),
            shown=_ms(pa),
            baseline=f"{_ms(git)} `git diff`" if git is not None else "-",
        )
    ]


def _stored_once(res: dict[str, Any]) -> list[Reading]:
    out, stored = _num(dig(res, "storage.output_bytes")), _num(dig(res, "storage.stored_bytes"))
    return [
        Reading(
            where=f"{_mb(out)} of agent output" if out else "agent output",
            value=_ratio(stored, out),
            shown=_mb(stored) if stored is not None else "",
            baseline=f"{_mb(out)} written by the agent" if out else "-",
        )
    ]


def _cap(res: dict[str, Any]) -> list[Reading]:
    c = dig(res, "storage.cap")
    limit = _num(dig(res, "storage.cap.limit_bytes"))
    stored = _num(dig(res, "storage.cap.stored_bytes"))
    if not isinstance(c, dict) or limit is None or stored is None:
        return [Reading(where="an agent writing more than the cap")]
    written = _num(c.get("written_bytes")) or 0.0
    cut = bool(c.get("cut_reported"))
    return [
        Reading(
            where=f"{_mb(written)} written, cap {_mb(limit)}",
            # stored per byte of the cap; a cut that is not reported fails whatever the size
            value=stored / limit if cut else float("inf"),
            shown=f"{_mb(stored)} stored" + ("" if cut else ", cut NOT reported"),
            baseline=f"cap {_mb(limit)}",
        )
    ]


def _scale_where(res: dict[str, Any], n: Any, own: bool = True) -> tuple[str, str]:
    """Where a scale figure was measured; ``own``: by the scale section (its running count)."""
    n = int(n or SCALE_SESSIONS)
    running = dig(res, "scale.running") if own else None
    where = f"{n:,} sessions" + (f", {running} running" if running else "")
    return where, ("" if n >= SCALE_SESSIONS else f"{n:,} of {SCALE_SESSIONS:,} sessions")


def _rss(res: dict[str, Any]) -> list[Reading]:
    where, short = _scale_where(res, dig(res, "scale.sessions"))
    return [Reading(where=where, value=_num(dig(res, "scale.server_rss_mb")), short=short)]


def _ls(res: dict[str, Any]) -> list[Reading]:
    where, short = _scale_where(res, dig(res, "scale.sessions"))
    ls = _num(dig(res, "scale.pa_ls_s.median"))
    py = _num(dig(res, "scale.python_startup_s.median"))
    return [
        Reading(
            where=where,
            value=ls * 1000 if ls is not None else None,
            baseline=f"{_ms(py)} Python start-up" if py is not None else "-",
            short=short,
        )
    ]


def _dashboard(res: dict[str, Any]) -> tuple[dict[str, Any], str]:
    d = dig(res, "scale.dashboard")
    if isinstance(d, dict):
        return d, "scale"
    d = res.get("dashboard")
    return (d, "bench_dashboard") if isinstance(d, dict) else ({}, "")


def _first_render(res: dict[str, Any]) -> list[Reading]:
    d, source = _dashboard(res)
    where, short = _scale_where(res, d.get("sessions"), own=source == "scale")
    return [Reading(where=where, value=_num(dig(d, "first_render_ms.median")), short=short)]


def _event_to_screen(res: dict[str, Any]) -> list[Reading]:
    d, source = _dashboard(res)
    where, short = _scale_where(res, d.get("sessions"), own=source == "scale")
    med = _num(dig(d, "event_to_shown_ms.median"))
    return [
        Reading(
            where=where,
            value=_num(dig(d, "event_to_shown_ms.p95")),
            baseline=f"median {med:,.0f} ms" if med is not None else "-",
            short=short,
        )
    ]


TARGETS: tuple[Target, ...] = (
    Target("1", "spawn without pool vs raw git", _spawn, 1.2, "<=", "×", "≤ 1.2×"),
    Target("2", "warm pool on by default", _pool, 1.0, ">=", "", "on, held within budget"),
    Target("3", "status latency p95", _status, 250, "<", "ms", "< 250 ms"),
    Target("4", "`pa diff` vs `git diff`", _diff, 1.5, "<=", "×", "≤ 1.5×"),
    Target("5a", "output stored once", _stored_once, 1.1, "<=", "×", "≤ 1.1× of output"),
    Target("5b", "output cap", _cap, 1.1, "<=", "×", "≤ 1.1× of the cap, cut reported"),
    Target("6a", "server RSS", _rss, 300, "<", "MB", "< 300 MB"),
    Target("6b", "`pa ls`", _ls, 300, "<", "ms", "< 300 ms"),
    Target("6c", "dashboard first render", _first_render, 1000, "<", "ms", "< 1 s"),
    Target("6d", "event → screen p95", _event_to_screen, 300, "<", "ms", "< 300 ms"),
)

PASS, FAIL, MISSING = "pass", "FAIL", "not measured"


def evaluate(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target's rows for this run, as plain data (written into the results JSON)."""
    out: list[dict[str, Any]] = []
    small = not res.get("full")
    for t in TARGETS:
        for r in t.read(res):
            if r.value is None:
                status, figure = MISSING, "-"
            else:
                ok = t.passes(r.value)
                figure = r.shown or t.fmt(r.value)
                if t.unit == "×" and r.shown and r.value != float("inf"):
                    figure = f"{r.shown} ({r.value:.2f}×)"
                # A full run must measure at the issue's size; a small run is judged at its own.
                status = MISSING if (r.short and not small) else PASS if ok else FAIL
            out.append(
                {
                    "target": t.key,
                    "name": t.name,
                    "where": r.where,
                    "figure": figure,
                    "value": None if r.value in (None, float("inf")) else round(r.value, 4),
                    "baseline": r.baseline,
                    "goal": t.goal,
                    "status": status,
                    "note": r.short if r.value is not None else "",
                    "short": "-" if r.value is None else _short(t, r),
                }
            )
    return out


def summary_table(rows: list[dict[str, Any]]) -> str:
    head = ["target", "measured at", "pa", "baseline (same run)", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        result = r["status"] if not r["note"] else f"{r['status']} ({r['note']})"
        cells = [f"{r['target']}. {r['name']}", r["where"], r["figure"], r["baseline"]]
        lines.append("| " + " | ".join([*cells, r["goal"], result]) + " |")
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]], full: bool) -> str:
    """One line: "all targets met", or which are not and which were not measured."""
    failed = [
        f"{r['target']} {r['name']} {r['short']}"
        + (f" at {r['where']}" if r["target"] == "1" else "")
        + f" (target {r['goal']})"
        for r in rows
        if r["status"] == FAIL
    ]
    missing = sorted({r["target"] for r in rows if r["status"] == MISSING}, key=_order)
    if not failed and not missing:
        scope = "" if full else " (small run: at the sizes it ran)"
        return f"Verdict: all targets met{scope}."
    parts = []
    if failed:
        parts.append("not met: " + "; ".join(failed))
    if missing:
        parts.append("not measured: " + ", ".join(missing))
    return "Verdict: " + "; ".join(parts) + "."


def _short(t: Target, r: Reading) -> str:
    if r.value == float("inf") or not t.unit:
        return r.shown
    return t.fmt(r.value) if r.value is not None else "-"


def _order(key: str) -> tuple[int, str]:
    return int(key.rstrip("abcd")), key

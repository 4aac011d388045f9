"""A fake agent for the benchmarks: replays lines of real agent output at a set rate.

Lines come from the captures of the real CLIs in the repository (tests/fixtures/captures,
recorded by scripts/record-captures; ``$PA_CAPTURES`` names another folder); when that folder
has none, synthetic stream-json lines of the same shape are used. Standard library only.

    python bench/fake_agent.py [--lines N] [--rate R] [--hold S] [--touch K]

--lines N   lines to write (cycling through the source; default: 40)
--rate R    lines per second (0: as fast as possible)
--hold S    stay alive S seconds after writing (a session that keeps running)
--touch K   modify K tracked files in the current directory first (a code change)
--gate P    write the first line, then wait until the file P exists before the rest
            (many sessions started, then all writing at once: an ingest rate)
--until P   after writing, stay alive until the file P exists (at most --hold seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = Path(os.environ.get("PA_CAPTURES") or ROOT / "tests" / "fixtures" / "captures")


def source_lines() -> tuple[list[str], str]:
    """(lines, where they came from)."""
    lines: list[str] = []
    if CAPTURES.is_dir():
        for p in sorted(CAPTURES.glob("*/*.jsonl")):
            try:
                text = p.read_text(encoding="utf-8")
            except OSError:
                continue
            lines += [ln for ln in text.splitlines() if ln.strip()]
    if lines:
        where = CAPTURES.relative_to(ROOT) if CAPTURES.is_relative_to(ROOT) else CAPTURES
        return lines, f"{len(lines)} lines replayed from {where}"
    return _synthetic(200), "synthetic stream-json lines (no reference captures found)"


def _synthetic(n: int) -> list[str]:
    out = [json.dumps({"type": "system", "subtype": "init", "session_id": "bench"})]
    for i in range(n - 2):
        if i % 3 == 0:
            msg = {
                "type": "assistant",
                "message": {
                    "content": [
                        {
                            "type": "text",
                            "text": f"Looking at module {i}: the handler needs a guard.",
                        }
                    ]
                },
            }
        elif i % 3 == 1:
            msg = {
                "type": "assistant",
                "message": {
                    "content": [
                        {
                            "type": "tool_use",
                            "id": f"toolu_{i}",
                            "name": "Edit",
                            "input": {
                                "file_path": f"src/mod{i}.py",
                                "old_string": "x",
                                "new_string": "y",
                            },
                        }
                    ]
                },
            }
        else:
            msg = {
                "type": "user",
                "message": {
                    "content": [
                        {"type": "tool_result", "tool_use_id": f"toolu_{i - 1}", "content": "ok"}
                    ]
                },
            }
        out.append(json.dumps(msg))
    out.append(
        json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "result": "done",
                "usage": {"input_tokens": 1200, "output_tokens": 340},
            }
        )
    )
    return out


def touch_files(k: int) -> list[str]:
    """Append a line to the first ``k`` tracked-looking files under the cwd."""
    changed: list[str] = []
    for root, dirs, files in os.walk("."):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for f in sorted(files):
            if f == ".git" or len(changed) >= k:
                continue
            p = Path(root, f)
            with open(p, "a", encoding="utf-8") as fh:
                fh.write("# changed by the benchmark agent\n")
            changed.append(str(p))
        if len(changed) >= k:
            break
    return changed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--hold", type=float, default=0.0)
    ap.add_argument("--touch", type=int, default=0)
    ap.add_argument("--gate", default="")
    ap.add_argument("--until", default="")
    a = ap.parse_args()
    if a.touch:
        touch_files(a.touch)
    lines, _ = source_lines()
    out = sys.stdout
    start = time.monotonic()
    for i in range(a.lines):
        out.write(lines[i % len(lines)] + "\n")
        if i == 0 and a.gate:
            out.flush()
            _wait_file(a.gate, float("inf"))
            start = time.monotonic()
        if a.rate > 0:
            out.flush()
            due = start + (i + 1) / a.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    out.flush()
    if a.until:
        _wait_file(a.until, a.hold or float("inf"))
    elif a.hold > 0:
        time.sleep(a.hold)
    return 0


def _wait_file(path: str, seconds: float) -> None:
    """Until ``path`` exists (a tenth of a second between looks: hundreds of these wait
    at once, and must not load the machine)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A tiny stand-in agent for the `command` agent in browser tests and benchmarks.

It reads its prompt from PA_PROMPT, prints a few plain and JSON lines (each becomes an
``output`` event), writes a file in the worktree, and exits 0. Options ride in the
prompt: ``delay=SECONDS`` (default 1) and ``file=PATH`` (default agent_turn<N>.txt).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path


def main() -> None:
    prompt = os.environ.get("PA_PROMPT", "")
    turn = int(os.environ.get("PA_TURN", "1") or 1)
    m = re.search(r"delay=([0-9.]+)", prompt)
    delay = float(m.group(1)) if m else 1.0
    m = re.search(r"file=(\S+)", prompt)
    name = m.group(1) if m else f"agent_turn{turn}.txt"
    first = prompt.strip().splitlines()[0] if prompt.strip() else ""
    print(f"turn {turn}: working on {first!r}", flush=True)
    print(json.dumps({"step": "plan", "turn": turn}), flush=True)
    time.sleep(delay / 2)
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"turn {turn}: {first}\n")
    print(f"wrote {name}", flush=True)
    time.sleep(delay / 2)
    print(f"done with turn {turn}", flush=True)


if __name__ == "__main__":
    main()

"""A stand-in TUI for the tmux tests (no hooks): prints captured Claude Code screens.

    fake_tui.py permission   the captured Bash permission prompt; a line "1" answers it
                             (then "● Done." and the captured idle screen); other lines
                             are echoed as "got: <line>"
    fake_tui.py echo         a banner with $PA_PROMPT, then "got: <line>" for every line
    fake_tui.py stubborn     the banner, then ignores hang-ups and input (like codex, it
                             outlives a killed tmux session)
A line "exit" ends it (exit code 0), "fail" ends it with exit code 3.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures" / "tui"
BANNER = "FAKE-TUI READY"


def screen(name: str) -> str:
    return (CAPTURES / name).read_text(encoding="utf-8")


def show(text: str) -> None:
    sys.stdout.write("\x1b[2J\x1b[H" + text.replace("\n", "\r\n"))
    sys.stdout.flush()


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "echo"
    if mode == "permission":
        show(screen("claude_bash_permission.txt"))
    else:
        show(f"{BANNER} prompt={os.environ.get('PA_PROMPT', '')}\n")
    if mode == "stubborn":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while True:
            time.sleep(0.05)
    waiting = mode == "permission"
    for raw in sys.stdin:
        line = raw.strip()
        if line == "exit":
            return 0
        if line == "fail":
            return 3
        if waiting and line == "1":
            waiting = False
            show("● Done.\n" + screen("claude_idle.txt"))
            continue
        sys.stdout.write(f"got: {line}\r\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

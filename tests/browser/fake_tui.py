#!/usr/bin/env python3
"""A tiny line-based "TUI" for the terminal tab's browser test (run by the command agent in
an interactive session, inside tmux): echoes what is typed, upper-cased, and reports its
terminal size when the window is resized."""

from __future__ import annotations

import os
import signal


def size() -> str:
    cols, rows = os.get_terminal_size()
    return f"{cols}x{rows}"


def on_winch(_sig: int, _frame: object) -> None:
    print(f"\r\n[resized to {size()}]", flush=True)


def main() -> None:
    signal.signal(signal.SIGWINCH, on_winch)
    print(f"fake TUI ready {size()}: {os.environ.get('PA_PROMPT', '')}", flush=True)
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        print(f"echo: {line.upper()}", flush=True)


if __name__ == "__main__":
    main()

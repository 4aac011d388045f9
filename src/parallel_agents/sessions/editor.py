"""`pa open` (issue 16 §3): a session's worktree in the user's editor.

Which editor: ``--editor`` (a known name or a command), else the ``editor`` setting, else
the first GUI editor found on PATH (VS Code, Cursor, Zed, JetBrains launchers), else
``$VISUAL`` / ``$EDITOR`` as a terminal editor. The worktree path is always one argv
element after the editor's own words, never through a shell. A GUI editor is started
detached (its launcher may return at once or stay); a terminal editor runs in the
foreground of this terminal.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.errors import NotFound, UsageError

# GUI editors, in the order they are looked for.
GUI = (
    "code", "cursor", "zed",
    "idea", "pycharm", "webstorm", "goland", "clion", "phpstorm", "rubymine", "rider",
    "rustrover",
)  # fmt: skip


@dataclass(frozen=True)
class EditorCommand:
    name: str  # "code", "vim", ...
    argv: list[str]  # the whole command, the worktree last
    gui: bool  # True: started detached; False: runs in this terminal

    def to_json(self) -> dict[str, Any]:
        return {"editor": self.name, "argv": self.argv, "gui": self.gui}


def _words(cmd: str, what: str) -> list[str]:
    try:
        words = shlex.split(cmd)
    except ValueError as e:
        raise UsageError(f"cannot read the editor command {what} ({e})") from e
    if not words:
        raise UsageError(f"the editor command {what} is empty")
    return words


def _found(words: list[str]) -> list[str] | None:
    path = shutil.which(words[0])
    return [path, *words[1:]] if path else None


def resolve(worktree: Path, choice: str | None = None) -> EditorCommand:
    """The command that opens ``worktree``; raises NotFound naming what was looked for."""
    wt = str(worktree)
    if choice:
        words = _words(choice, repr(choice))
        found = _found(words)
        if found is None:
            raise NotFound(
                f"the editor {words[0]!r} is not on PATH",
                hint="install it, or pick another with --editor (or the `editor` setting); "
                "known: " + ", ".join(GUI),
            )
        name = Path(words[0]).name
        return EditorCommand(name, [*found, wt], gui=name in GUI)
    for name in GUI:
        path = shutil.which(name)
        if path:
            return EditorCommand(name, [path, wt], gui=True)
    looked = [*GUI]
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        looked.append(f"${var}")
        if value:
            words = _words(value, f"${var}")
            found = _found(words)
            if found is not None:
                return EditorCommand(Path(words[0]).name, [*found, wt], gui=False)
            looked[-1] = f"${var} ({words[0]}: not on PATH)"
    raise NotFound(
        "no editor found; looked for " + ", ".join(looked),
        hint="install one, set $VISUAL or $EDITOR, or say which: pa open ID --editor CMD "
        "(or the `editor` setting)",
    )


def launch(cmd: EditorCommand, worktree: Path) -> int | None:
    """Run ``cmd``: a GUI editor detached (None), a terminal editor in the foreground
    (its exit code)."""
    if cmd.gui:
        proc = subprocess.Popen(
            cmd.argv,
            cwd=worktree,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # it outlives pa and ignores our terminal's signals
        )
        # Reaped when it ends, so a long-running server collects no zombie editors.
        threading.Thread(target=proc.wait, name="editor-reaper", daemon=True).start()
        return None
    return subprocess.run(cmd.argv, cwd=worktree, check=False).returncode

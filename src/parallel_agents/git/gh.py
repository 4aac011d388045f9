"""Asking the GitHub CLI (``gh``) for JSON: the one runner behind pa's read-only gh calls
(new pull requests for routines, ``pa new --from-pr/--from-issue``, ``pa plan import
--gh-label``). argv only, never a shell; no prompt, no stdin; gh's own words on a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import PAError

INSTALL = "install gh (https://cli.github.com; Debian: apt install gh), then run `gh auth login`"


def _logged_out(text: str) -> bool:
    return "auth login" in text or "GH_TOKEN" in text or "not logged" in text


def gh_json(
    args: list[str],
    *,
    cwd: Path | None = None,
    why: str,
    after: str = "",
    exe: str | None = None,
    timeout: float = 120.0,
    fail: type[PAError] = PAError,
    fail_hint: str | None = None,
) -> Any:
    """``gh ARGS`` run in ``cwd``, its stdout parsed as JSON. ``why`` finishes "so pa
    cannot …" in the errors for a missing or logged-out gh; ``after`` ends every error
    message (e.g. "; nothing was made"); a failing gh raises ``fail`` with ``fail_hint``."""
    exe = exe or shutil.which("gh")
    if exe is None:
        raise PAError(
            f"the GitHub CLI (gh) is not installed, so pa cannot {why}{after}", hint=INSTALL
        )
    what = " ".join(args[:2])
    try:
        r = subprocess.run(
            [exe, *args], cwd=str(cwd) if cwd else None, capture_output=True, text=True,
            stdin=subprocess.DEVNULL,
            env={**git.git_env(), "GH_PROMPT_DISABLED": "1", "NO_COLOR": "1"},
            timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PAError(f"gh {what} could not run ({e}){after}") from e
    if r.returncode != 0:
        lines = [ln.strip() for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        if _logged_out(" ".join(lines)):
            raise PAError(
                f"gh is not logged in to GitHub, so pa cannot {why}{after}",
                hint="run `gh auth login`, then try again",
            )
        raise fail(
            f"gh {what} failed: {lines[-1] if lines else f'exit {r.returncode}'}{after}",
            hint=fail_hint or f"run `gh {' '.join(args[:2])}` yourself to see why",
        )
    try:
        return json.loads(r.stdout or "null")
    except json.JSONDecodeError as e:
        raise PAError(f"gh {what} answered something that is not JSON: {r.stdout[:200]!r}") from e

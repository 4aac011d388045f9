"""Leave the package's shared cluster as a test found it: a session's actor holds its
`pa_agent` slot while the session lives, and each test has its own PA_HOME (its own Ray
namespace), so what a test does not discard would hold slots for the rest of the
package."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import pa

DONE = ("merged", "discarded")


def discard_all(cwd: Path, env: dict[str, str] | None = None) -> None:
    """Discard every session of this PA_HOME that still holds a slot (archived first, as
    any discard; a running one is stopped by the discard)."""
    out = pa("ls", "--all", "--json", cwd=cwd, env=env, timeout=120)
    if out.returncode != 0:
        return
    for s in json.loads(out.stdout):
        if s["status"] not in DONE:
            pa("discard", s["id"], cwd=cwd, env=env, timeout=180)

"""Hatch build hook: every wheel and sdist carries the dashboard's third-party files.

The files (diff2html, xterm.js, marked, DOMPurify) come from npm, pinned by
``package-lock.json``, and are copied into ``src/parallel_agents/web/static/vendor/`` by
``scripts/build-web.sh``; they are gitignored, so a fresh clone has none. Before hatch
collects the files of a target, this hook makes sure they are there and match the lock:

- already built and matching ``package-lock.json`` (a checkout after build-web.sh, or an
  unpacked sdist): nothing to do, no node needed;
- otherwise, with ``npm`` and ``node`` on PATH: run ``scripts/build-web.sh`` (``npm ci`` +
  copy) in place;
- otherwise: a wheel or sdist build fails with one line saying what to install, because
  a package without them serves a dashboard with no diff viewer, terminal or Markdown;
  an editable install (``pip install -e .``) goes on and prints how to build them later.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VENDOR = Path("src/parallel_agents/web/static/vendor")
NEED = "Node.js and npm (e.g. apt-get install npm)"


def lock_versions(root: Path) -> dict[str, str]:
    """Top-level package versions in package-lock.json: what build-web.sh records in
    vendor/versions.json (same rule as the node snippet there)."""
    lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for key, meta in (lock.get("packages") or {}).items():
        name = key.removeprefix("node_modules/")
        if key.startswith("node_modules/") and "node_modules/" not in name:
            out[name] = str(meta.get("version"))
    return out


def vendor_state(root: Path) -> str:
    """``"ok"``, ``"missing"`` or ``"stale"`` (built from another package-lock.json)."""
    stamp = root / VENDOR / "versions.json"
    if not stamp.is_file():
        return "missing"
    if not (root / "package-lock.json").is_file():
        return "ok"  # nothing to compare with: trust what is there
    try:
        built = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "stale"
    return "ok" if built == lock_versions(root) else "stale"


class WebAssetsHook(BuildHookInterface):  # type: ignore[type-arg,misc,unused-ignore]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        state = vendor_state(root)
        if state == "ok":
            return
        editable = self.target_name == "wheel" and version == "editable"
        what = "are not built" if state == "missing" else "do not match package-lock.json"
        problem = f"the dashboard's third-party files ({VENDOR}/) {what}"
        tools = [t for t in ("bash", "node", "npm") if shutil.which(t) is None]
        script = root / "scripts" / "build-web.sh"
        if not script.is_file():
            tools = ["scripts/build-web.sh"]  # an unpacked sdist without its assets
        if not tools:
            self.app.display_info(f"parallel-agents: {problem}: running scripts/build-web.sh")
            # build-web.sh installs npm with apt-get when it is missing; we checked it is
            # there, and a package build must not install system packages anyway.
            env = {**os.environ, "PA_BUILD_WEB_NO_APT": "1"}
            proc = subprocess.run(
                ["bash", str(script)],
                cwd=root,
                env=env,
                stdout=sys.stderr,  # keep stdout clean for frontends that parse it
                check=False,
            )
            if proc.returncode == 0 and vendor_state(root) == "ok":
                return
            problem += f" and scripts/build-web.sh failed (exit {proc.returncode})"
            hint = "see its output above (npm ci needs the npm registry or its cache)"
        elif not script.is_file():
            hint = "build from a git clone, or from an sdist made where npm was installed"
        else:
            hint = (
                f"install {NEED} and build again: the build runs scripts/build-web.sh,"
                " which installs the versions pinned in package-lock.json"
            )
        missing = f" ({', '.join(tools)} not found)" if tools else ""
        if editable:
            # The install still works (CLI, server); the dashboard shows a banner until then.
            print(
                f"parallel-agents: {problem}{missing}; the dashboard lacks its diff viewer,"
                f" terminal and Markdown until you run scripts/build-web.sh (needs {NEED})",
                file=sys.stderr,
            )
            return
        print(
            f"error: cannot build parallel-agents: {problem}{missing}.\n"
            f"hint: {hint}.",
            file=sys.stderr,
        )
        raise SystemExit(1)

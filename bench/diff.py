"""`pa diff` of a session that changed 10 files, against plain `git diff` of the same change.

Each form (patch, ``--stat``, ``--name-only``) alternates a `pa diff` run with the `git
diff` run that prints the same thing, at least five pairs, so that load on the machine
falls on both alike. The breakdown says where `pa diff`'s time goes (medians, ms, each
part timed on its own):

- ``python_start``: the interpreter alone; ``light_client_imports``: it plus the light
  client path `pa diff` takes when a server runs (``parallel_agents._quick``: no click,
  no client package, no ``http.client``); ``click_client_imports``: what the click
  command would import instead (for comparison; not on the path any more);
- ``http_round_trip``: a ``/health`` request;
- ``server_diff_argv``: the server's work on the fast path: checking that its untracked
  cache still vouches for the worktree and answering with the one `git diff BASE` the
  client then runs itself (exec: git prints straight to the terminal);
- ``server_diff_text``: the server's work when it streams the text instead, timed in this process through the function
  the route calls, while pa's untracked cache knows the worktree holds nothing untracked
  (one `git diff BASE`, what the benchmark's repeated runs see); ``server_diff_text_cold``:
  the same with that cache emptied first (a walk for nested repositories and folder
  stamps, git's untracked listing, then the diff), what the first `pa diff` after new
  files pays; ``server_walk`` and ``server_untracked_listing``: those two parts alone;
- ``git_diff``, ``git_status``: the baselines;
- ``rest``: ``pa_diff_total`` minus the light imports, the round trip, the server's
  answer and `git diff` itself: the request's handling in the server and the exec.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Home, agent_cmd, stats, wait_for

FORMS: dict[str, list[str]] = {"patch": [], "stat": ["--stat"], "name_only": ["--name-only"]}


def run(home: Home, repo: Path, reps: int = 5, files: int = 10) -> dict[str, Any]:
    reps = max(5, reps)
    home.write_settings("[limits]\nmax_running = 0\n")
    if not (home.home / "pa.db").exists():
        home.pa("repo", "add", str(repo), "--name", "bench")
    p = home.pa(
        "new",
        "change files",
        "--repo",
        "bench",
        "--json",
        "--cmd",
        agent_cmd("--touch", str(files), "--lines", "5"),
    )
    s = json.loads(p.stdout)
    home.pa("wait", "--timeout", "300", s["id"])
    wt = Path(s["worktree"])
    base = s["base_commit"]
    names = home.pa("diff", s["id"], "--name-only").stdout.split()
    if len(names) != files:
        raise RuntimeError(f"expected {files} changed files, pa diff lists {len(names)}")

    def once(argv: list[str], cwd: Path | None = None) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        r = subprocess.run(argv, cwd=cwd, capture_output=True, env=home.env())
        took = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode(errors="replace"))
        return took, r.stdout

    out: dict[str, Any] = {"files_changed": files, "runs": reps}
    for form, flags in FORMS.items():
        git_flags = ["--name-only", "-z"] if form == "name_only" else flags
        ours: list[float] = []
        raw: list[float] = []
        for _ in range(reps):  # alternating, so a burst of load hits both
            t, text = once(home.pa_argv("diff", s["id"], *flags))
            ours.append(t)
            t, want = once(["git", "diff", "--no-color", "-M", *git_flags, base], cwd=wt)
            raw.append(t)
        if form == "name_only":
            want = want.replace(b"\0", b"\n")
        key = "" if form == "patch" else f"_{form}"
        out[f"same_output{key}"] = text == want  # the same change set, printed alike
        out[f"pa_diff{key}_s"] = stats(ours)
        out[f"git_diff{key}_s"] = stats(raw)
        out[f"ratio{key}"] = round(stats(ours)["median"] / stats(raw)["median"], 2)
    out["breakdown_ms"] = breakdown(home, s["id"], wt, base, reps)
    return out


def breakdown(home: Home, sid: str, wt: Path, base: str, reps: int) -> dict[str, float]:
    """Medians (ms) of the parts of one `pa diff`, each timed on its own."""
    env = home.env()

    def proc(argv: list[str], cwd: Path | None = None) -> Callable[[], object]:
        return lambda: subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)

    click = "import parallel_agents.cli, parallel_agents.cli.review, parallel_agents.client"
    parts: dict[str, Callable[[], object]] = {
        "python_start": proc([sys.executable, "-c", "pass"]),
        "light_client_imports": proc([sys.executable, "-c", "import parallel_agents._quick"]),
        "click_client_imports": proc([sys.executable, "-c", click]),
        "pa_diff_total": proc(home.pa_argv("diff", sid)),
        "git_diff": proc(["git", "diff", "--no-color", "-M", base], cwd=wt),
    }
    parts.update(_server_parts(home, sid, wt, base))
    # `git status` rewrites the worktree's index, which makes pa's untracked cache stale
    # (the tracked set may have changed): timed after the rest, or every pa figure
    # after it would be a cache miss (`pa diff` alone never runs it).
    parts["git_status"] = proc(["git", "status", "--porcelain"], cwd=wt)
    times: dict[str, list[float]] = {k: [] for k in parts}
    for name, fn in parts.items():
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    res = {k: round(stats(v)["median"] * 1000, 1) for k, v in times.items()}
    # What is left of the total: the request's handling in the server, printing, exit.
    res["rest"] = round(
        res["pa_diff_total"]
        - res["light_client_imports"]
        - res["http_round_trip"]
        - res["server_diff_argv"]
        - res["git_diff"],
        1,
    )
    return res


def _server_parts(home: Home, sid: str, wt: Path, base: str) -> dict[str, Callable[[], object]]:
    """The server's share, run in this process on the same store and worktree."""
    with home.activated():
        from parallel_agents.client import Client
        from parallel_agents.git import diffs, untracked_cache
        from parallel_agents.sessions import review
        from parallel_agents.store import Store

        store = Store(home.home)
        s = store.resolve_session(sid)
        cl = Client.from_home(home.home)

    def text() -> None:
        with home.activated():
            chunks, _ = review.diff_text(store, s, None)
            "".join(chunks)

    def argv() -> None:
        with home.activated():
            if review.diff_argv(store, s) is None:
                raise RuntimeError("the server would not hand `git diff` to the client")

    def cold() -> None:
        untracked_cache.forget(wt)
        text()

    def walk() -> None:
        untracked_cache.Look(wt, diffs.git_dir(wt)).wait()

    text()  # the cache learns the worktree (as the benchmark's first `pa diff` did)
    deadline = time.monotonic() + 10  # it vouches once its stamps are a second old
    while review.diff_argv(store, s) is None and time.monotonic() < deadline:
        time.sleep(0.1)
        text()
    # Hits first; the cold path (which forgets the cache) and the walks after them.
    return {
        "http_round_trip": lambda: cl.health(),
        "server_diff_argv": argv,
        "server_diff_text": text,
        "server_diff_text_cold": cold,
        "server_walk": walk,
        "server_untracked_listing": lambda: untracked_cache.untracked(wt),
    }


def wait_exit(home: Home, sid: str) -> None:
    f = home.turn_file(sid, "exit")
    wait_for(f.exists, 120, "the agent to exit")

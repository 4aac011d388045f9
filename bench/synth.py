"""Synthetic data for the benchmarks: a large git repository and fake agents.

The repository is written with one ``git fast-import`` stream (no per-file ``git add``),
with nested folders and a realistic spread of file sizes (log-normal, median ~1.5 KB,
a few files of 50-200 KB). Content is deterministic for a given seed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",
}

_WORDS = [
    "self",
    "value",
    "result",
    "items",
    "config",
    "request",
    "response",
    "handler",
    "client",
    "server",
    "index",
    "buffer",
    "error",
    "state",
    "count",
    "name",
    "path",
    "data",
    "node",
    "parent",
    "child",
    "key",
    "token",
    "stream",
    "update",
    "create",
    "delete",
    "render",
    "parse",
    "format",
    "check",
    "limit",
    "offset",
    "cursor",
    "session",
]
_EXT = [(".py", 40), (".ts", 20), (".md", 8), (".json", 8), (".go", 10), (".css", 4), (".txt", 10)]


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_ENV)
    return env


def _line(rng: random.Random) -> str:
    indent = "    " * rng.randint(0, 3)
    w = rng.choices(_WORDS, k=rng.randint(2, 7))
    return f"{indent}{w[0]} = {w[1]}({', '.join(w[2:])})\n"


def _content(rng: random.Random, size: int, pool: list[str]) -> bytes:
    parts: list[str] = []
    n = 0
    while n < size:
        s = pool[rng.randrange(len(pool))]
        parts.append(s)
        n += len(s)
    return "".join(parts).encode()


def _paths(rng: random.Random, n_files: int) -> list[str]:
    """Nested folders: ~20 files per folder, up to 5 levels deep."""
    dirs = [""]
    paths: list[str] = []
    i = 0
    while len(paths) < n_files:
        if rng.random() < 0.06 or len(dirs) == 1:
            parent = rng.choice(dirs)
            depth = parent.count("/")
            if depth < 5:
                dirs.append(f"{parent}{rng.choice(_WORDS)}{len(dirs)}/")
                continue
        d = dirs[-1] if rng.random() < 0.7 else rng.choice(dirs)
        ext = rng.choices([e for e, _ in _EXT], weights=[w for _, w in _EXT])[0]
        paths.append(f"{d}{rng.choice(_WORDS)}_{i}{ext}")
        i += 1
    return paths


def make_repo(path: Path, n_files: int = 20_000, seed: int = 7) -> Path:
    """A git repo at ``path`` with ``n_files`` committed files on ``main`` (one commit)."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    env = git_env()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    pool = [_line(rng) for _ in range(4000)]
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"],
        cwd=path,
        stdin=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    w = proc.stdin.write
    now = int(time.time())
    w(b"commit refs/heads/main\n")
    w(f"author bench <bench@localhost> {now} +0000\n".encode())
    w(f"committer bench <bench@localhost> {now} +0000\n".encode())
    msg = f"synthetic repo with {n_files} files\n".encode()
    w(b"data %d\n%s\n" % (len(msg), msg))
    for p in _paths(rng, n_files):
        size = int(min(200_000, max(40, rng.lognormvariate(7.3, 1.0))))
        data = _content(rng, size, pool)
        w(b"M 100644 inline %s\ndata %d\n%s\n" % (p.encode(), len(data), data))
    w(b"\ndone\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=path, check=True, env=env)
    return path


if __name__ == "__main__":
    t = time.perf_counter()
    make_repo(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
    print(f"built in {time.perf_counter() - t:.2f}s")

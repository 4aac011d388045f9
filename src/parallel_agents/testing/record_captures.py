"""Record the agent captures that the adapter tests replay (``tests/fixtures/captures``).

Each recording runs a real, pinned agent CLI (``.agents/bin``, installed by
``scripts/install-agents.sh``) against the :class:`ScriptedModelServer` on 127.0.0.1, in a
fresh git repository and a private home, and stores what the CLI printed. Machine-specific
details (temp paths, ports, random ids, clocks, pids) are rewritten to stable placeholders,
so two recordings on different machines give the same files and the tests can name values.

    scripts/record-captures                     # every agent, into tests/fixtures/captures
    scripts/record-captures claude codex        # only these agents
    python -m parallel_agents.testing.record_captures --out DIR [AGENT...]

``manifest.json`` beside the captures lists, per file, the CLI version, the argv (normalized)
and the exit code, so a reader can tell how each capture was produced.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from parallel_agents.testing.agent_env import (
    agent_env,
    agents_prefix,
    base_environ,
    codex_env,
    find_agent,
)
from parallel_agents.testing.capture_normalizer import HOME, PORT, WORK, Normalizer
from parallel_agents.testing.model_server import ScriptedModelServer
from parallel_agents.testing.record_screens import SCREENS, record_tui
from parallel_agents.testing.recordings import (
    RECORDINGS,
    TIMEOUT,
    Ctx,
    Recording,
    cli_version,
    make_git_repo,
    script_sessions,
)

__all__ = ["RECORDINGS", "SCREENS", "Normalizer", "Recording", "main", "record_agent"]


def _run(argv: list[str], rec: Recording, ctx: Ctx, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI; with ``stop_at``, end it once it prints that (it would wait forever)."""
    proc = subprocess.Popen(
        argv,
        cwd=ctx.work,
        env=env,
        stdin=subprocess.PIPE if rec.stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if rec.stop_at is None:
        try:
            out, _err = proc.communicate(rec.stdin, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _err = proc.communicate()
            raise RuntimeError(f"{rec.agent}/{rec.name}: no exit within {TIMEOUT:.0f}s") from None
        return proc.returncode, out
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(rec.stdin or "")
    proc.stdin.flush()
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    for line in proc.stdout:  # the CLI flushes per line; the deadline bounds a silent CLI
        lines.append(line)
        if rec.stop_at in line or time.monotonic() > deadline:
            break
    proc.kill()
    proc.wait()
    return proc.returncode, "".join(lines)


def record_agent(
    agent: str, out: Path, binary: Path, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Record every capture of ``agent`` into ``out/agent``; returns the manifest entries."""
    version = cli_version(binary, agent)
    target = out / agent
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    norm = Normalizer()
    entries: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix=f"pa-captures-{agent}-") as tmp,
        ScriptedModelServer(script_sessions()) as server,
    ):
        root = Path(tmp)
        norm.add_path(root, "/tmp/example")
        host = server.url.rstrip("/").split("://", 1)[1]
        norm.paths.insert(0, (host, f"127.0.0.1:{PORT}"))
        learned: dict[str, dict[str, str]] = {}
        for index, rec in enumerate(r for r in RECORDINGS if r.agent == agent):
            group = rec.group or f"solo{index}"
            base = root / group
            ctx = Ctx(work=base / "work", home=base / "home", learned=learned.get(group, {}))
            if not ctx.work.exists():
                make_git_repo(ctx.work)
            norm.add_path(ctx.work, WORK)
            norm.add_path(ctx.home, HOME)
            env = {**base_environ(), "HOME": str(ctx.home)}
            if rec.key:
                env.update(
                    agent_env(
                        agent, ctx.home, server_url=server.url, api_key=rec.key, workdir=ctx.work
                    )
                )
            if rec.retries or rec.notify:
                notify = None
                if rec.notify:
                    # Codex passes the payload as argv[1]; one JSON object per line.
                    notify = [
                        "/bin/sh",
                        "-c",
                        f"printf '%s\\n' \"$1\" >> '{base}/notify.jsonl'",
                        "notify",
                    ]
                env.update(
                    codex_env(
                        ctx.home,
                        base_url=f"{server.url.rstrip('/')}/v1",
                        api_key=rec.key,
                        workdir=ctx.work,
                        retries=rec.retries,
                        notify=notify,
                    )
                )
            env.update(rec.env)
            argv = [str(binary), *rec.args(ctx)]
            log(f"{agent}/{rec.name}")
            code, stdout = _run(argv, rec, ctx, env)
            if rec.learn is not None:
                learned[group] = rec.learn(stdout)
            text = stdout
            if rec.output is not None:
                text = (base / rec.output).read_text(encoding="utf-8")
            if rec.name.endswith(".jsonl"):
                text = "".join(f"{ln}\n" for ln in text.splitlines() if ln.strip())
            if rec.show_input and rec.stdin:
                text = "".join(f">>> {ln}\n" for ln in rec.stdin.splitlines()) + text
            if not text.strip():
                raise RuntimeError(f"{agent}/{rec.name}: the CLI printed nothing (exit {code})")
            name = rec.name.replace("help.txt", f"help_{version}.txt")
            (target / name).write_text(norm(text), encoding="utf-8")
            entries.append(
                {
                    "file": f"{agent}/{name}",
                    "version": version,
                    "argv": [agent, *(norm(a) for a in argv[1:])],
                    "exit_code": code,
                }
            )
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    agents = [*sorted({r.agent for r in RECORDINGS}), "tui"]
    parser = argparse.ArgumentParser(
        prog="record-captures",
        description="Re-record the agent captures the adapter tests replay, from the real "
        "pinned CLIs against the scripted model server (127.0.0.1 only).",
    )
    parser.add_argument("agents", nargs="*", metavar="AGENT", help=f"any of {', '.join(agents)}")
    parser.add_argument("--out", type=Path, required=True, help="the captures folder")
    parser.add_argument("--prefix", type=Path, default=None, help="where the CLIs are installed")
    args = parser.parse_args(argv)
    chosen = args.agents or agents
    unknown = [a for a in chosen if a not in agents]
    if unknown:
        parser.error(f"unknown agent(s) {', '.join(unknown)}; known: {', '.join(agents)}")
    prefix = args.prefix or agents_prefix()
    needed = {s.agent for s in SCREENS} if "tui" in chosen else set()
    missing = sorted({a for a in chosen if a != "tui"} | needed)
    missing = [a for a in missing if find_agent(a, prefix) is None]
    if missing:
        print(f"error: {', '.join(missing)} not installed in {prefix / 'bin'}", file=sys.stderr)
        print("hint: run scripts/install-agents.sh first", file=sys.stderr)
        return 1
    out: Path = args.out
    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for agent in chosen:
        binary = find_agent(agent, prefix)
        say = lambda m: print(f"recording {m}", flush=True)  # noqa: E731
        if agent == "tui":
            entries = record_tui(out, prefix, say)
        else:
            assert binary is not None
            entries = record_agent(agent, out, binary, say)
        manifest = {k: v for k, v in manifest.items() if not k.startswith(f"{agent}/")}
        manifest.update({e.pop("file"): e for e in entries})
    manifest_path.write_text(
        json.dumps(dict(sorted(manifest.items())), indent=2) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

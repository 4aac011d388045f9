"""mini-swe-agent adapter: argv, follow-up tasks, and the trajectory file as the source of truth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import TurnContext
from parallel_agents.agents.mini import MiniAgent, trajectory_path

from .conftest import FakeBin, MakeCtx, kinds, of_kind, parse_all

A = MiniAgent()
REAL_MINI = Path(__file__).resolve().parents[2] / ".agents" / "bin" / "mini"


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("mini"), **(settings or {})}, **kw)


def test_first_turn_argv_and_env(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="openai/gpt-4o", prompt="-fix it")
    launch = A.build(ctx)
    traj = ctx.session_dir / "turn-1.traj.json"
    assert launch.argv == [
        ctx.settings["binary"],
        "--task=-fix it",
        "--yolo",
        "--exit-immediately",
        "-o",
        str(traj),
        "--model",
        "openai/gpt-4o",
    ]
    assert launch.env == {"MSWEA_CONFIGURED": "true", "MSWEA_SILENT_STARTUP": "1"}
    assert not A.supports_resume


def test_settings_and_user_env(
    make_ctx: MakeCtx, fake_bin: FakeBin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSWEA_CONFIGURED", "1")
    ctx = _ctx(
        make_ctx,
        fake_bin,
        settings={
            "model_class": "litellm_textbased",
            "cost_limit": 0,
            "config": ["mini.yaml", "x=1"],
        },
    )
    launch = A.build(ctx)
    assert launch.argv[6:] == [
        "--model-class",
        "litellm_textbased",
        "--cost-limit",
        "0",
        "-c",
        "mini.yaml",
        "-c",
        "x=1",
    ]
    assert launch.env == {"MSWEA_SILENT_STARTUP": "1"}


def test_captured_trajectory(captures: Path, make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin)
    ctx.session_dir.mkdir(parents=True)
    shutil.copyfile(captures / "mini" / "out.traj.json", trajectory_path(ctx.session_dir, 1))
    state: dict[str, object] = {}
    events = A.after_exit(ctx, state)
    assert kinds(events) == [
        "message",
        "tool_call",
        "command",
        "message",
        "tool_call",
        "command",
        "usage",
    ]
    cmds = of_kind(events, "command")
    assert cmds[0] == {
        "command": "echo hello > hello.txt && cat hello.txt",
        "exit_code": 0,
        "output": "hello\n",
        "id": "call_pa3cae33dd000_0",  # the scripted server's stable call id
    }
    assert cmds[1]["exit_code"] == 0 and cmds[1]["output"] == "?? hello.txt\n"
    assert of_kind(events, "tool_call")[0]["id"] == "call_pa3cae33dd000_0"
    # Two model calls of 1200 + 42 tokens (the script), priced by litellm for gpt-4o.
    (usage,) = of_kind(events, "usage")
    assert usage["input_tokens"] == 2400 and usage["output_tokens"] == 84
    assert usage["cached_tokens"] == 0 and usage["cost_usd"] == pytest.approx(0.00684)
    end = A.finish(0, "", json.loads(json.dumps(state)))
    assert end.ok
    assert end.result == "Submitting."  # the last assistant message of the trajectory


def _traj(
    messages: list[dict[str, object]], status: str, submission: str = "", cost: float = 0.5
) -> str:
    return json.dumps(
        {
            "info": {
                "model_stats": {"instance_cost": cost, "api_calls": 1},
                "exit_status": status,
                "submission": submission,
            },
            "messages": messages,
            "trajectory_format": "mini-swe-agent-1.1",
        }
    )


def test_interactive_agent_trajectory_with_limits(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    """What `mini` (InteractiveAgent, litellm) writes: tokens in extra.response, padded
    observations for actions that did not run, and LimitsExceeded with exit code 0."""
    ctx = _ctx(make_ctx, fake_bin)
    ctx.session_dir.mkdir(parents=True)
    msgs: list[dict[str, object]] = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "extra": {
                "actions": [
                    {"command": "ls", "tool_call_id": "a"},
                    {"command": "false", "tool_call_id": "b"},
                ],
                "response": {
                    "usage": {
                        "prompt_tokens": 100,
                        "completion_tokens": 7,
                        "prompt_tokens_details": {"cached_tokens": 40},
                    }
                },
            },
        },
        {
            "role": "tool",
            "tool_call_id": "a",
            "content": "...",
            "extra": {"raw_output": "x\n", "returncode": 0},
        },
        {
            "role": "tool",
            "tool_call_id": "b",
            "content": "...",
            "extra": {"raw_output": "", "returncode": 1, "exception_info": ""},
        },
        {
            "role": "exit",
            "content": "LimitsExceeded",
            "extra": {"exit_status": "LimitsExceeded", "submission": ""},
        },
    ]
    trajectory_path(ctx.session_dir, 1).write_text(_traj(msgs, "LimitsExceeded"))
    state: dict[str, object] = {}
    events = A.after_exit(ctx, state)
    assert [p["exit_code"] for p in of_kind(events, "command")] == [0, 1]
    assert of_kind(events, "usage")[0] == {
        "input_tokens": 100,
        "output_tokens": 7,
        "cached_tokens": 40,
        "cost_usd": 0.5,
    }
    end = A.finish(0, "", state)
    assert not end.ok and end.reason == "limits_exceeded" and "LimitsExceeded" in (end.error or "")


def test_crash_leaves_a_partial_trajectory(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin)
    ctx.session_dir.mkdir(parents=True)
    msgs: list[dict[str, object]] = [
        {
            "role": "exit",
            "content": "bad key",
            "extra": {"exit_status": "AuthenticationError", "submission": ""},
        }
    ]
    trajectory_path(ctx.session_dir, 1).write_text(_traj(msgs, "AuthenticationError"))
    state: dict[str, object] = {}
    A.after_exit(ctx, state)
    end = A.finish(1, "Traceback ...", state)
    assert not end.ok and end.error == "mini stopped: AuthenticationError: bad key"
    # No trajectory at all: the exit code and stderr explain.
    ctx2 = _ctx(make_ctx, fake_bin, turn=2)
    state2: dict[str, object] = {}
    assert A.after_exit(ctx2, state2) == []
    assert A.finish(1, "ImportError: litellm", state2).error == "exit code 1: ImportError: litellm"
    trajectory_path(ctx.session_dir, 3).write_text("{not json")
    assert A.after_exit(_ctx(make_ctx, fake_bin, turn=3), {}) == []


def test_follow_up_carries_a_summary_of_earlier_runs(
    captures: Path, make_ctx: MakeCtx, fake_bin: FakeBin
) -> None:
    ctx1 = _ctx(make_ctx, fake_bin, prompt="Create hello.txt containing hello")
    A.build(ctx1)
    shutil.copyfile(captures / "mini" / "out.traj.json", trajectory_path(ctx1.session_dir, 1))
    ctx2 = _ctx(make_ctx, fake_bin, turn=2, prompt="now add a README")
    launch = A.build(ctx2)
    task = launch.argv[1].removeprefix("--task=")
    assert task.endswith("\n\nNew instruction:\nnow add a README")
    assert "Task: Create hello.txt containing hello" in task
    assert "$ echo hello > hello.txt && cat hello.txt" in task
    assert "Exit status: Submitted" in task
    assert launch.argv[5] == str(ctx2.session_dir / "turn-2.traj.json")
    # Turn 3 summarises both runs by their own instructions, not nested summaries.
    shutil.copyfile(captures / "mini" / "out.traj.json", trajectory_path(ctx1.session_dir, 2))
    task3 = A.build(_ctx(make_ctx, fake_bin, turn=3, prompt="done?")).argv[1]
    assert task3.count("New instruction:") == 1
    assert "Task: now add a README" in task3


def test_stdout_lines() -> None:
    events = parse_all(A, ["mini-swe-agent (step 3, $0.12):", "some rich text", ""])
    assert kinds(events) == ["status", "raw"]
    assert events[0].payload == {"state": "running", "step": 3, "cost_usd": 0.12}


@pytest.mark.skipif(not REAL_MINI.exists(), reason="mini not installed: run scripts/install-agents.sh")
def test_real_mini_with_its_deterministic_model(make_ctx: MakeCtx, tmp_path: Path) -> None:
    """The real `mini` binary runs our argv offline (its deterministic tool-call model)."""
    outputs = [
        {
            "role": "assistant",
            "content": "Writing the file.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": "{}"},
                }
            ],
            "extra": {
                "actions": [
                    {"command": "echo hello > hello.txt && cat hello.txt", "tool_call_id": "call_1"}
                ],
                "cost": 1.0,
            },
        },
        {
            "role": "assistant",
            "content": "Done.",
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "bash", "arguments": "{}"},
                }
            ],
            "extra": {
                "actions": [
                    {
                        "command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
                        "tool_call_id": "call_2",
                    }
                ],
                "cost": 1.0,
            },
        },
    ]
    model_cfg = tmp_path / "model.yaml"
    model_cfg.write_text(json.dumps({"model": {"outputs": outputs}}))
    ctx = make_ctx(
        prompt="-create hello.txt",
        model="deterministic_toolcall",
        settings={
            "binary": str(REAL_MINI),
            "model_class": "minisweagent.models.test_models.DeterministicToolcallModel",
            "config": ["mini.yaml", str(model_cfg)],
        },
    )
    launch = A.build(ctx)
    env = {**os.environ, **launch.env, "MSWEA_GLOBAL_CONFIG_DIR": str(tmp_path / "mcfg")}
    proc = subprocess.run(
        launch.argv,
        cwd=ctx.worktree,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (ctx.worktree / "hello.txt").read_text() == "hello\n"
    state: dict[str, object] = {}
    parse_all(A, proc.stdout.splitlines(), state)
    events = A.after_exit(ctx, state)
    cmds = of_kind(events, "command")
    assert cmds[0]["exit_code"] == 0 and cmds[0]["output"] == "hello\n"
    assert (
        cmds[-1]["command"] == "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
        and cmds[-1]["exit_code"] == 0
    )
    assert of_kind(events, "usage")[0]["cost_usd"] == 2.0
    end = A.finish(proc.returncode, proc.stderr, state)
    assert end.ok and end.result == "Done."
    traj = json.loads(trajectory_path(ctx.session_dir, 1).read_text())
    assert "-create hello.txt" in traj["messages"][1]["content"]

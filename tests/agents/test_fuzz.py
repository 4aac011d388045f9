"""Every adapter's parse_line survives anything a CLI (or a broken pipe) can print.

Properties, for every registered adapter: no exception; the state stays JSON-able (the
supervisor stores it between calls); payloads are bounded; a JSON-lines adapter turns a
line it cannot read into exactly one ``raw`` event holding the line (capped at MAX_RAW).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parallel_agents.agents import registry
from parallel_agents.agents.base import MAX_RAW, Agent, NormEvent, TurnContext

from .conftest import CAPTURES

ALL = sorted(registry.BUILTIN)
# Adapters reading JSON lines: anything that is not a JSON object must come back as raw.
JSON_LINES = ["claude", "codex", "gemini", "opencode", "cursor", "amp"]
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _capture_lines() -> list[str]:
    if not CAPTURES.is_dir():
        return ['{"type":"system","subtype":"init","session_id":"s"}']
    out = []
    for p in sorted(CAPTURES.rglob("*.json*")):
        for ln in p.read_text(encoding="utf-8").splitlines():
            try:
                if isinstance(json.loads(ln), dict):
                    out.append(ln)
            except ValueError:
                continue
    return out


SAMPLES = _capture_lines()
KNOWN_TYPES = sorted(
    {
        "system",
        "assistant",
        "user",
        "result",
        "control_request",
        "control_response",
        "keep_alive",
        "prompt_suggestion",
        "conversation_reset",
        "stream_event",
        "rate_limit_event",
        "tool_call",
        "thinking",
        "thread.started",
        "turn.started",
        "turn.completed",
        "turn.failed",
        "item.started",
        "item.updated",
        "item.completed",
        "error",
        "request_user_input",
        "init",
        "message",
        "tool_use",
        "tool_result",
        "step_start",
        "step_finish",
        "text",
        "reasoning",
        "done",
    }
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "message", "item", "part", "result", "usage", "modelUsage", "model_usage_since_last_result",
    "content", "session_id", "sessionID", "thread_id", "is_error", "error", "errors", "stats",
    "tool_call", "request", "status", "role", "delta", "tool_id", "parameters", "text", "tokens",
]  # fmt: skip
SUBTYPES = ["init", "success", "error_max_turns", "api_retry", "started", "completed", "delta"]


@st.composite
def truncated(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(SAMPLES))
    return line[: draw(st.integers(min_value=0, max_value=len(line)))]


@st.composite
def known_type_wrong_fields(draw: st.DrawFn) -> str:
    obj: dict[str, Any] = draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5))
    obj["type"] = draw(st.sampled_from(KNOWN_TYPES))
    sub = draw(st.none() | st.sampled_from(SUBTYPES))
    if sub is not None:
        obj["subtype"] = sub
    return json.dumps(obj)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    obj = json.loads(draw(st.sampled_from(SAMPLES)))
    target = obj
    for field in ("message", "item", "part", "result", "usage"):
        if isinstance(obj.get(field), dict) and draw(st.booleans()):
            target = obj[field]
            break
    key = draw(st.sampled_from(sorted(target)) if target else st.text(max_size=8))
    target[key] = draw(json_values)
    return json.dumps(obj)


@st.composite
def unknown_type(draw: st.DrawFn) -> str:
    obj: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    obj["type"] = draw(st.text(max_size=16).filter(lambda t: t not in KNOWN_TYPES))
    return json.dumps(obj)


def _not_object(v: Any) -> bool:
    return not isinstance(v, dict)


any_line = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace").rstrip("\r")),
    truncated(),
    json_values.map(json.dumps),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(json.dumps),
    known_type_wrong_fields(),
    mutated(),
    unknown_type(),
)
# Lines a JSON-lines adapter cannot read: each must come back as exactly one raw event.
unreadable = st.one_of(
    truncated().filter(lambda s: s.strip() != "" and not _is_object(s)),
    json_values.filter(_not_object).map(json.dumps),
    unknown_type(),
    st.binary(min_size=1, max_size=100).map(lambda b: "{" + b.decode("utf-8", "replace")),
)


def _is_object(s: str) -> bool:
    try:
        return isinstance(json.loads(s), dict)
    except ValueError:
        return False


def _check(agent: Agent, line: str, state: dict[str, Any]) -> list[NormEvent]:
    events = agent.parse_line(line, state)
    assert isinstance(events, list)
    json.dumps(state)  # the supervisor persists it between calls
    for ev in events:
        text = json.dumps(ev.payload)
        assert len(text) < 8 * MAX_RAW, (ev.kind, len(text))
        if ev.kind.value == "raw":
            assert ev.payload["text"] == line[:MAX_RAW]
    return events


AGENTS = [registry.get_agent(n) for n in ALL]
NO_FILES = TurnContext(
    prompt="", worktree=Path("/nonexistent/pa"), session_dir=Path("/nonexistent/pa"), turn=1
)


@FUZZ
@given(lines=st.lists(any_line, min_size=1, max_size=3))
def test_any_line_for_every_adapter(lines: list[str]) -> None:
    for agent in AGENTS:
        state: dict[str, Any] = {"usage_base": {"cost_usd": 1.0, "input_tokens": 5}}
        for line in lines:
            _check(agent, line, state)
            state = json.loads(json.dumps(state))
        for ev in agent.after_exit(NO_FILES, state):
            json.dumps(ev.payload)
        json.dumps(state)
        agent.finish(1, "stderr tail", state)
        agent.finish(0, "", state)
        agent.agent_session_id(state)


@FUZZ
@given(line=unreadable)
def test_unreadable_lines_become_raw(line: str) -> None:
    for agent in AGENTS:
        if agent.name in JSON_LINES:
            events = _check(agent, line, {})
            assert [e.kind.value for e in events] == ["raw"], (agent.name, line)


@pytest.mark.parametrize("name", ALL)
def test_ten_megabyte_lines(name: str) -> None:
    agent = registry.get_agent(name)
    big = "x" * (10 * 1024 * 1024)
    huge_msg = json.dumps(
        {
            "type": "assistant",
            "message": {
                "content": [
                    {"type": "text", "text": big},
                    {"type": "tool_use", "id": "t", "name": "Write", "input": {"content": big}},
                ]
            },
        }
    )
    huge_item = json.dumps(
        {
            "type": "item.completed",
            "item": {
                "id": "i",
                "type": "command_execution",
                "command": "cat",
                "aggregated_output": big,
                "exit_code": 0,
            },
        }
    )
    huge_gemini = json.dumps(
        {"type": "message", "role": "assistant", "content": big, "delta": True}
    )
    deep = "[" * 100_000 + "]" * 100_000
    for line in (big, "{" + big, huge_msg, huge_item, huge_gemini, deep, "{" + deep[:-1] + "}"):
        started = time.monotonic()
        state: dict[str, Any] = {}
        _check(agent, line, state)
        assert len(json.dumps(state)) < 4 * MAX_RAW
        assert time.monotonic() - started < 5


def test_all_adapters_are_covered() -> None:
    assert set(ALL) == set(registry.BUILTIN)
    assert Path(__file__).name == "test_fuzz.py"

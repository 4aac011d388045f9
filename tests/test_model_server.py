"""The scripted model server, spoken to over real HTTP in every API dialect it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallel_agents.testing import (
    AGENT_NAMES,
    ScriptedModelServer,
    ScriptError,
    agent_env,
    base_environ,
    load_script,
)
from parallel_agents.testing.script import ModelTurn
from parallel_agents.testing.tools import SUBMIT_MARKER

CWD = "/work/repo"

HELLO_SCRIPT: list[dict[str, Any]] = [
    {
        "match": "hello-key",
        "turns": [
            {"say": "I'll create the file.", "write": {"path": "hello.txt", "content": "hello\n"}},
            {"text": "Done. Created hello.txt."},
            {"run": "echo bye > bye.txt"},
            {"text": "Bye."},
        ],
    },
    {
        "match": "PROMPT-TOKEN",
        "turns": [{"run": "ls"}, {"text": "Listed."}],
    },
]


def sse_events(body: str) -> list[tuple[str | None, Any]]:
    """Parse an SSE body into (event name, JSON data) pairs; ``[DONE]`` stays a string."""
    events: list[tuple[str | None, Any]] = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        payload = "\n".join(data)
        events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(HELLO_SCRIPT) as running:
        yield running


@pytest.fixture
def client(server: ScriptedModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


# -- Anthropic Messages -------------------------------------------------------------------

CLAUDE_TOOLS = [
    {
        "name": "Bash",
        "input_schema": {"type": "object", "properties": {"command": {}, "description": {}}},
    },
    {
        "name": "Write",
        "input_schema": {"type": "object", "properties": {"file_path": {}, "content": {}}},
    },
]


def anthropic_body(messages: list[dict[str, Any]], stream: bool = True) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "stream": stream,
        "system": [{"type": "text", "text": f"You are Claude Code.\nWorking directory: {CWD}\n"}],
        "tools": CLAUDE_TOOLS,
        "messages": messages,
    }


def test_anthropic_stream_translates_write_to_claude_write_tool(
    client: httpx.Client, server: ScriptedModelServer
) -> None:
    body = anthropic_body([{"role": "user", "content": [{"type": "text", "text": "make hello"}]}])
    response = client.post("/v1/messages", json=body, headers={"x-api-key": "sk-hello-key-1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("content_block_start") == 2 and "message_delta" in names
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert starts[0] == {"type": "text", "text": ""}
    assert starts[1]["type"] == "tool_use" and starts[1]["name"] == "Write"
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert deltas[0] == {"type": "text_delta", "text": "I'll create the file."}
    assert json.loads(deltas[1]["partial_json"]) == {
        "file_path": f"{CWD}/hello.txt",
        "content": "hello\n",
    }
    message_delta = next(data for name, data in events if name == "message_delta")
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["output_tokens"] > 0
    start = next(data for name, data in events if name == "message_start")
    assert start["message"]["usage"]["input_tokens"] > 0

    record = server.requests[-1]
    assert (record.session, record.turn, record.matched_by) == ("hello-key", 0, "key")
    assert record.kind == "turn" and record.dialect == "anthropic" and record.stream
    assert record.tool_calls == ("Write",)
    assert record.headers["x-api-key"] == "<redacted>"
    assert record.body["messages"][0]["content"][0]["text"] == "make hello"


def test_anthropic_plain_json_and_turn_from_history(client: httpx.Client) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "make hello"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll create the file."},
                {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}],
        },
    ]
    response = client.post(
        "/v1/messages",
        json=anthropic_body(history, stream=False),
        headers={"authorization": "Bearer hello-key"},
    )
    assert response.status_code == 200
    message = response.json()
    assert message["type"] == "message" and message["stop_reason"] == "end_turn"
    assert message["content"] == [{"type": "text", "text": "Done. Created hello.txt."}]
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] > 0

    # A follow-up prompt after the final answer continues with the next scripted turns.
    follow_up: list[dict[str, Any]] = [
        *history,
        {"role": "assistant", "content": [{"type": "text", "text": "Done. Created hello.txt."}]},
        {"role": "user", "content": "now bye"},
    ]
    message = client.post(
        "/v1/messages",
        json=anthropic_body(follow_up, stream=False),
        headers={"x-api-key": "hello-key"},
    ).json()
    assert message["stop_reason"] == "tool_use"
    (call,) = message["content"]
    assert call["name"] == "Bash" and call["input"]["command"] == "echo bye > bye.txt"
    assert "description" in call["input"]


def test_retried_request_gets_the_same_answer(client: httpx.Client) -> None:
    body = anthropic_body([{"role": "user", "content": "x"}], stream=False)
    first = client.post("/v1/messages", json=body, headers={"x-api-key": "hello-key"}).json()
    again = client.post("/v1/messages", json=body, headers={"x-api-key": "hello-key"}).json()
    assert first == again


def test_exhausted_script_answers_final_text(
    client: httpx.Client, server: ScriptedModelServer
) -> None:
    turns = []
    for _ in range(4):
        turns += [{"role": "user", "content": "go"}, {"role": "assistant", "content": "x"}]
    body = anthropic_body([*turns, {"role": "user", "content": "more"}], stream=False)
    message = client.post("/v1/messages", json=body, headers={"x-api-key": "hello-key"}).json()
    assert message["stop_reason"] == "end_turn"
    assert "no more turns" in message["content"][0]["text"]
    assert server.requests[-1].kind == "exhausted"


def test_session_matched_by_first_prompt(client: httpx.Client, server: ScriptedModelServer) -> None:
    body = anthropic_body([{"role": "user", "content": "please PROMPT-TOKEN now"}], stream=False)
    message = client.post("/v1/messages", json=body, headers={"x-api-key": "unrelated"}).json()
    assert message["content"][0]["input"]["command"] == "ls"
    assert server.requests[-1].matched_by == "prompt"
    assert server.requests[-1].session == "PROMPT-TOKEN"


def test_unmatched_request_is_an_api_error(
    client: httpx.Client, server: ScriptedModelServer
) -> None:
    body = anthropic_body([{"role": "user", "content": "nothing matches"}], stream=False)
    response = client.post("/v1/messages", json=body, headers={"x-api-key": "nobody"})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "no script session matches" in error["error"]["message"]
    assert server.requests[-1].kind == "unmatched"


def test_request_without_tools_is_a_utility_request(
    client: httpx.Client, server: ScriptedModelServer
) -> None:
    body = {"model": "claude-haiku", "messages": [{"role": "user", "content": "title for: hi"}]}
    message = client.post("/v1/messages", json=body, headers={"x-api-key": "hello-key"}).json()
    assert message["content"] == [{"type": "text", "text": "OK"}]
    assert server.requests[-1].kind == "utility" and server.requests[-1].session is None


def test_startup_endpoints(client: httpx.Client) -> None:
    assert client.head("/").status_code == 200
    models = client.get("/v1/models").json()
    assert any(m["id"] == "claude-sonnet-4-5" for m in models["data"])
    counted = client.post(
        "/v1/messages/count_tokens", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert counted.json()["input_tokens"] >= 1
    assert client.post("/v1/nothing", json={}).status_code == 404


# -- OpenAI Responses (Codex) -------------------------------------------------------------

CODEX_TOOLS = [
    {
        "type": "function",
        "name": "exec_command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}, "workdir": {}}},
    },
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
    {"type": "web_search"},
]


def responses_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "gpt-5.5",
        "instructions": "You are Codex.",
        "stream": True,
        "tools": CODEX_TOOLS,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "dev"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": f"<environment_context><cwd>{CWD}</cwd>"}
                ],
            },
            *items,
        ],
    }


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_responses_stream_uses_apply_patch_and_exec_command(
    client: httpx.Client, server: ScriptedModelServer
) -> None:
    headers = {"authorization": "Bearer hello-key"}
    response = client.post("/v1/responses", json=responses_body([user_item("go")]), headers=headers)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    done = [data["item"] for name, data in events if name == "response.output_item.done"]
    assert done[0]["type"] == "message" and done[0]["content"][0]["text"] == "I'll create the file."
    assert done[1]["type"] == "custom_tool_call" and done[1]["name"] == "apply_patch"
    assert done[1]["input"] == "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
    usage = events[-1][1]["response"]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    deltas = [data["delta"] for name, data in events if name == "response.output_text.delta"]
    assert deltas == ["I'll create the file."]

    history: list[dict[str, Any]] = [
        user_item("go"),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "..."},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Done"}],
        },
        user_item("now bye"),
    ]
    events = sse_events(
        client.post("/v1/responses", json=responses_body(history), headers=headers).text
    )
    done = [data["item"] for name, data in events if name == "response.output_item.done"]
    assert done[0]["type"] == "function_call" and done[0]["name"] == "exec_command"
    assert json.loads(done[0]["arguments"]) == {"cmd": "echo bye > bye.txt"}
    assert server.requests[-1].turn == 2 and server.requests[-1].dialect == "responses"


def test_responses_plain_json(client: httpx.Client) -> None:
    body = {**responses_body([user_item("go")]), "stream": False}
    response = client.post(
        "/v1/responses", json=body, headers={"authorization": "Bearer hello-key"}
    )
    payload = response.json()
    assert payload["object"] == "response" and payload["status"] == "completed"
    assert [item["type"] for item in payload["output"]] == ["message", "custom_tool_call"]


def test_write_without_trailing_newline_goes_through_the_shell(tmp_path: Path) -> None:
    script = [{"turns": [{"write": {"path": "dir/a b.txt", "content": "no newline"}}]}]
    with ScriptedModelServer(script) as server:
        body = {**responses_body([user_item("go")]), "stream": False}
        payload = httpx.post(f"{server.openai_base_url}/responses", json=body, timeout=10).json()
    (call,) = payload["output"]
    command = json.loads(call["arguments"])["cmd"]
    assert call["name"] == "exec_command"
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    assert (tmp_path / "dir" / "a b.txt").read_text() == "no newline"


# -- Chat Completions (litellm, mini-swe-agent) -------------------------------------------

BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
}


def chat_body(messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
    return {"model": "gpt-4o", "stream": stream, "tools": [BASH_TOOL], "messages": messages}


def test_chat_stream_with_tool_calls(client: httpx.Client, server: ScriptedModelServer) -> None:
    body = chat_body([{"role": "user", "content": "do PROMPT-TOKEN"}], stream=True)
    response = client.post("/v1/chat/completions", json=body)
    events = sse_events(response.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [data for _, data in events[:-1]]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["function"]["name"] == "bash"
    assert json.loads(calls[0]["function"]["arguments"]) == {"command": "ls"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] > 0
    assert server.requests[-1].dialect == "chat"


def test_chat_plain_final_text(client: httpx.Client) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "do PROMPT-TOKEN"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a b"},
    ]
    payload = client.post("/v1/chat/completions", json=chat_body(messages, stream=False)).json()
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "Listed."}
    assert payload["usage"]["completion_tokens"] > 0


def test_mini_swe_agent_final_text_becomes_the_submit_command(tmp_path: Path) -> None:
    script = [{"turns": [{"text": "All done, it's fixed."}]}]
    prompt = f"Please solve this issue: x\nfinish with `echo {SUBMIT_MARKER}`"
    with ScriptedModelServer(script) as server:
        body = chat_body(
            [{"role": "system", "content": "sys"}, {"role": "user", "content": prompt}], False
        )
        payload = httpx.post(
            f"{server.openai_base_url}/chat/completions", json=body, timeout=10
        ).json()
    message = payload["choices"][0]["message"]
    assert message["content"] == "All done, it's fixed."
    command = json.loads(message["tool_calls"][0]["function"]["arguments"])["command"]
    output = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, check=True
    ).stdout
    assert output == f"{SUBMIT_MARKER}\nAll done, it's fixed.\n"


# -- Gemini -------------------------------------------------------------------------------

GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "run_shell_command",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"command": {}, "description": {}},
                },
            },
            {
                "name": "write_file",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"file_path": {}, "content": {}},
                },
            },
        ]
    }
]


def gemini_body(contents: list[dict[str, Any]]) -> dict[str, Any]:
    context = f"<session_context>\n- **Workspace Directories:**\n  - {CWD}\n</session_context>"
    return {
        "contents": [{"role": "user", "parts": [{"text": context}]}, *contents],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
        "tools": GEMINI_TOOLS,
    }


def test_gemini_stream_and_plain(client: httpx.Client, server: ScriptedModelServer) -> None:
    body = gemini_body([{"role": "user", "parts": [{"text": "go"}]}])
    response = client.post(
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        json=body,
        headers={"x-goog-api-key": "hello-key"},
    )
    (event,) = sse_events(response.text)
    candidate = event[1]["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    parts = candidate["content"]["parts"]
    assert parts[0] == {"text": "I'll create the file."}
    assert parts[1]["functionCall"] == {
        "name": "write_file",
        "args": {"file_path": f"{CWD}/hello.txt", "content": "hello\n"},
    }
    assert event[1]["usageMetadata"]["promptTokenCount"] > 0
    assert server.requests[-1].matched_by == "key"

    history: list[dict[str, Any]] = [
        {"role": "user", "parts": [{"text": "go"}]},
        {
            "role": "model",
            "parts": [{"text": "x"}, {"functionCall": {"name": "write_file", "args": {}}}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {}}}]},
    ]
    payload = client.post(
        "/v1beta/models/gemini-2.5-pro:generateContent?key=hello-key", json=gemini_body(history)
    ).json()
    assert payload["candidates"][0]["content"]["parts"] == [{"text": "Done. Created hello.txt."}]
    assert server.requests[-1].turn == 1 and server.requests[-1].query["key"] == "hello-key"


def test_gemini_json_side_request_never_hands_the_turn_back(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "next_speaker": {"type": "string", "enum": ["user", "model"]},
        },
    }
    body = {
        "contents": [{"role": "user", "parts": [{"text": "who speaks next?"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema},
    }
    payload = client.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body).json()
    answer = json.loads(payload["candidates"][0]["content"]["parts"][0]["text"])
    assert answer == {"reasoning": "OK", "next_speaker": "user"}
    assert (
        client.post("/v1beta/models/gemini-2.5-pro:countTokens", json=body).json()["totalTokens"]
        >= 1
    )


# -- scripted faults ----------------------------------------------------------------------


def test_error_turns_in_each_dialect() -> None:
    script = [{"turns": [{"error": {"status": 401, "message": "bad key"}}]}]
    with (
        ScriptedModelServer(script) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        claude = http.post("/v1/messages", json=anthropic_body([{"role": "user", "content": "x"}]))
        assert claude.status_code == 401
        assert claude.json()["error"] == {"type": "authentication_error", "message": "bad key"}
        assert claude.headers["x-should-retry"] == "false"
        codex = http.post("/v1/responses", json=responses_body([user_item("x")]))
        assert codex.status_code == 401
        assert codex.json()["error"]["code"] == "invalid_api_key"
        gemini = http.post("/v1beta/models/g:generateContent", json=gemini_body([]))
        assert gemini.json()["error"] == {
            "code": 401,
            "message": "bad key",
            "status": "UNAUTHENTICATED",
        }
        assert [r.kind for r in server.requests] == ["error"] * 3
        assert [r.status for r in server.requests] == [401] * 3


def test_transient_error_answers_n_times_then_steps_aside() -> None:
    script = [
        {
            "turns": [
                {"error": {"status": 500, "message": "boom", "times": 2}},
                {"text": "recovered"},
            ]
        }
    ]
    with ScriptedModelServer(script) as server:
        body = chat_body([{"role": "user", "content": "x"}], stream=False)
        url = f"{server.openai_base_url}/chat/completions"
        responses = [httpx.post(url, json=body, timeout=10) for _ in range(3)]
        assert [r.status_code for r in responses] == [500, 500, 200]
        assert responses[0].headers["x-should-retry"] == "true"  # transient: retry at once
        assert responses[0].json()["error"]["message"] == "boom"
        assert (
            httpx.post(url, json=body, timeout=10).json()["choices"][0]["message"]["content"]
            == "recovered"
        )
        assert [r.kind for r in server.turns()] == ["error", "error", "turn", "turn"]
        assert all(r.turn == 0 for r in server.turns())


# -- concurrency, log, lifecycle ----------------------------------------------------------


def test_parallel_sessions_each_get_their_own_turns() -> None:
    script = [
        {"match": f"agent-{i}", "turns": [{"run": f"echo {i}"}, {"text": f"done {i}"}]}
        for i in range(8)
    ]

    def converse(index: int) -> list[str]:
        key = {"x-api-key": f"agent-{index}"}
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        seen = []
        with httpx.Client(base_url=running.url, timeout=10) as http:
            for _ in range(2):
                message = http.post(
                    "/v1/messages", json=anthropic_body(messages, False), headers=key
                ).json()
                block = message["content"][0]
                seen.append(block.get("text") or block["input"]["command"])
                messages += [
                    {"role": "assistant", "content": message["content"]},
                    {"role": "user", "content": "ok"},
                ]
        return seen

    with ScriptedModelServer(script) as running, ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(converse, range(8)))
    assert results == [[f"echo {i}", f"done {i}"] for i in range(8)]
    assert len(running.turns()) == 16
    assert {r.session for r in running.turns("agent-3")} == {"agent-3"}


def test_wait_for_and_clear(server: ScriptedModelServer, client: httpx.Client) -> None:
    client.get("/v1/models")
    assert server.wait_for(lambda r: r.kind == "models", timeout=5).path == "/v1/models"
    with pytest.raises(TimeoutError):
        server.wait_for(lambda r: r.kind == "turn", timeout=0.05)
    server.clear_requests()
    assert server.requests == []


def test_port_requires_start() -> None:
    server = ScriptedModelServer(HELLO_SCRIPT)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    with server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    server.stop()  # idempotent


def test_script_file_reloads_when_edited(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text("- turns: [{text: first}]\n")
    with ScriptedModelServer(path) as server:
        body = anthropic_body([{"role": "user", "content": "x"}], stream=False)
        assert (
            httpx.post(f"{server.url}/v1/messages", json=body).json()["content"][0]["text"]
            == "first"
        )
        path.write_text("- turns: [{text: second}]\n")
        os.utime(path, (1, 1))  # a distinct mtime even within the same clock tick
        assert (
            httpx.post(f"{server.url}/v1/messages", json=body).json()["content"][0]["text"]
            == "second"
        )


def test_command_line_serves_a_script_file(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps([{"turns": [{"text": "from the CLI"}]}]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parallel_agents.testing.model_server",
            "--script",
            str(path),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ")[1].strip()
        body = anthropic_body([{"role": "user", "content": "x"}], stream=False)
        assert (
            httpx.post(f"{url}/v1/messages", json=body, timeout=10).json()["content"][0]["text"]
            == "from the CLI"
        )
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_command_line_rejects_a_bad_script(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- match: x\n  turns: []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "parallel_agents.testing.model_server", "--script", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "turns: expected a non-empty list of turns" in proc.stderr


# -- script format ------------------------------------------------------------------------


def test_load_script_from_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        """
utility_text: fine
sessions:
  - name: first
    match: token-a
    turns:
      - say: working
        calls:
          - run: make test
          - write: {path: a.txt, content: "a\\n"}
          - tool: {name: Read, arguments: {file_path: /x}}
        usage: {input_tokens: 5, output_tokens: 7}
        delay: 0.01
      - Done.
"""
    )
    script = load_script(path)
    assert script.utility_text == "fine"
    (session,) = script.sessions
    assert (session.name, session.match) == ("first", "token-a")
    first, second = session.turns
    assert isinstance(first, ModelTurn) and isinstance(second, ModelTurn)
    assert len(first.actions) == 3 and first.text == "working"
    assert first.usage is not None and first.usage.output_tokens == 7
    assert second.text == "Done." and second.is_final


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "non-empty list of sessions"),
        ([{"match": "a"}], "turns: expected a non-empty list"),
        ([{"turns": [{"write": {"path": "/abs", "content": ""}}]}], "must be relative"),
        ([{"turns": [{"text": "a", "run": "b"}]}], "'text' is a final answer"),
        ([{"turns": [{"say": "a"}]}], "'say' needs tool calls"),
        ([{"turns": [{"run": "a", "write": {"path": "b", "content": ""}}]}], "one action per turn"),
        ([{"turns": [{"error": {"status": 200}}]}], "HTTP error status"),
        ([{"turns": [{"error": {"status": 500, "times": 0}}]}], "positive integer"),
        ([{"turns": [{"bogus": 1}]}], "unknown key(s) ['bogus']"),
        ([{"match": "x", "turns": ["a"]}, {"match": "x", "turns": ["b"]}], "duplicate session"),
    ],
)
def test_bad_scripts_say_where(data: Any, message: str) -> None:
    with pytest.raises(ScriptError) as excinfo:
        load_script(data)
    assert message in str(excinfo.value)


def test_unreadable_script_file(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot read script"):
        load_script(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ScriptError, match="not valid json"):
        load_script(bad)


# -- environments that point the CLIs at the server ---------------------------------------


def test_base_environ_drops_real_credentials_and_pwd() -> None:
    source = {
        "PATH": "/usr/bin",
        "ANTHROPIC_API_KEY": "real",
        "OPENAI_BASE_URL": "https://real",
        "GEMINI_API_KEY": "real",
        "CODEX_HOME": "/root/.codex",
        "PWD": "/elsewhere",
    }
    assert base_environ(source) == {"PATH": "/usr/bin"}


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_agent_env_keeps_everything_under_the_private_home(name: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = agent_env(name, home, server_url="http://127.0.0.1:9", api_key="k", workdir=tmp_path)
    assert env["HOME"] == str(home)
    for key, value in env.items():
        if key.endswith(("_HOME", "_DIR")) and value.startswith("/"):
            assert Path(value).is_relative_to(home), key


def test_codex_env_writes_a_responses_provider(tmp_path: Path) -> None:
    env = agent_env(
        "codex", tmp_path / "h", server_url="http://127.0.0.1:9/", api_key="k1", workdir=tmp_path
    )
    config = tomllib.loads((Path(env["CODEX_HOME"]) / "config.toml").read_text())
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:9/v1"
    assert provider["wire_api"] == "responses"
    assert env[provider["env_key"]] == "k1"
    assert config["projects"][str(tmp_path.resolve())]["trust_level"] == "trusted"


def test_agent_env_rejects_unknown_agents(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown agent 'aider'"):
        agent_env("aider", tmp_path, server_url="http://127.0.0.1:9", api_key="k")

"""OpenAI's Responses API (Codex) and Chat Completions API (litellm / mini-swe-agent)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from parallel_agents.testing.conversation import (
    Conversation,
    HttpResponse,
    Reply,
    ToolSpec,
    count_runs,
    schema_properties,
    text_of,
)
from parallel_agents.testing.sse import json_response, sse_response

__all__ = ["error", "parse_chat", "parse_responses", "render_chat", "render_responses"]

_MODEL_ITEMS = {
    "function_call",
    "custom_tool_call",
    "local_shell_call",
    "reasoning",
    "web_search_call",
    "tool_search_call",
}
_ERROR_CODES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


def api_key(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return headers.get("api-key", "")


def _is_model_item(item: Mapping[str, Any]) -> bool:
    kind = item.get("type", "message")
    return kind in _MODEL_ITEMS or (kind == "message" and item.get("role") == "assistant")


def parse_responses(body: Mapping[str, Any], headers: Mapping[str, str]) -> Conversation:
    raw_input = body.get("input")
    items: list[Mapping[str, Any]]
    if isinstance(raw_input, str):
        items = [{"type": "message", "role": "user", "content": raw_input}]
    else:
        items = [i for i in raw_input or [] if isinstance(i, Mapping)]
    first_prompt = []
    for item in items:
        if _is_model_item(item):
            break
        if item.get("type", "message") == "message" and item.get("role") == "user":
            first_prompt.append(text_of(item.get("content")))
    last_user = ""
    for item in items:
        if item.get("type", "message") == "message" and item.get("role") == "user":
            last_user = text_of(item.get("content"))
    tools: dict[str, ToolSpec] = {}
    for tool in body.get("tools") or []:
        if not isinstance(tool, Mapping):
            continue
        kind = tool.get("type")
        name = tool.get("name")
        if kind == "function" and isinstance(name, str):
            props, arrays = schema_properties(tool.get("parameters"))
            tools[name] = ToolSpec(name, properties=props, array_params=arrays)
        elif kind == "custom" and isinstance(name, str):
            tools[name] = ToolSpec(name, custom=True)
        elif isinstance(kind, str):
            tools[kind] = ToolSpec(kind)
    wants_json = None
    text_format = (
        (body.get("text") or {}).get("format") if isinstance(body.get("text"), Mapping) else None
    )
    if isinstance(text_format, Mapping) and text_format.get("type") == "json_schema":
        schema = text_format.get("schema")
        wants_json = schema if isinstance(schema, Mapping) else {}
    return Conversation(
        dialect="responses",
        model=str(body.get("model", "gpt")),
        api_key=api_key(headers),
        stream=bool(body.get("stream")),
        tools=tools,
        system=text_of(body.get("instructions")),
        first_prompt="\n".join(first_prompt),
        model_turns=count_runs(_is_model_item(i) for i in items),
        wants_json=wants_json,
        last_user_text=last_user,
    )


def _response_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append(
            {
                "type": "message",
                "id": f"msg_{reply.response_id}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        )
    for call in reply.calls:
        if call.custom_input is not None:
            items.append(
                {
                    "type": "custom_tool_call",
                    "id": f"ctc_{call.id}",
                    "status": "completed",
                    "call_id": f"call_{call.id}",
                    "name": call.name,
                    "input": call.custom_input,
                }
            )
        else:
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{call.id}",
                    "status": "completed",
                    "call_id": f"call_{call.id}",
                    "name": call.name,
                    "arguments": json.dumps(dict(call.arguments)),
                }
            )
    return items


def _responses_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.usage.input_tokens + reply.usage.output_tokens,
    }


def render_responses(reply: Reply, conv: Conversation) -> HttpResponse:
    items = _response_items(reply)
    response: dict[str, Any] = {
        "id": f"resp_{reply.response_id}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": conv.model,
        "output": items,
        "usage": _responses_usage(reply),
    }
    if not conv.stream:
        return json_response(200, response)
    seq = 0
    events: list[tuple[str | None, Any]] = []

    def emit(name: str, data: dict[str, Any]) -> None:
        nonlocal seq
        events.append((name, {"type": name, "sequence_number": seq, **data}))
        seq += 1

    emit(
        "response.created",
        {"response": {**response, "status": "in_progress", "output": [], "usage": None}},
    )
    for index, item in enumerate(items):
        emit(
            "response.output_item.added",
            {"output_index": index, "item": {**item, "status": "in_progress"}},
        )
        if item["type"] == "message":
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            base = {"item_id": item["id"], "output_index": index, "content_index": 0}
            emit("response.content_part.added", {**base, "part": part})
            emit("response.output_text.delta", {**base, "delta": text})
            emit("response.output_text.done", {**base, "text": text})
            emit("response.content_part.done", {**base, "part": {**part, "text": text}})
        elif item["type"] == "function_call":
            base = {"item_id": item["id"], "output_index": index}
            emit("response.function_call_arguments.delta", {**base, "delta": item["arguments"]})
            emit("response.function_call_arguments.done", {**base, "arguments": item["arguments"]})
        emit("response.output_item.done", {"output_index": index, "item": item})
    emit("response.completed", {"response": response})
    return sse_response(events)


def parse_chat(body: Mapping[str, Any], headers: Mapping[str, str]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    system = "\n".join(
        text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    first_prompt = []
    for message in messages:
        if message.get("role") == "assistant":
            break
        if message.get("role") == "user":
            first_prompt.append(text_of(message.get("content")))
    users = [m for m in messages if m.get("role") == "user"]
    tools: dict[str, ToolSpec] = {}
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            props, arrays = schema_properties(function.get("parameters"))
            tools[function["name"]] = ToolSpec(
                function["name"], properties=props, array_params=arrays
            )
    wants_json = None
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        wants_json = schema if isinstance(schema, Mapping) else {}
    return Conversation(
        dialect="chat",
        model=str(body.get("model", "gpt")),
        api_key=api_key(headers),
        stream=bool(body.get("stream")),
        tools=tools,
        system=system,
        first_prompt="\n".join(first_prompt),
        model_turns=count_runs(m.get("role") == "assistant" for m in messages),
        wants_json=wants_json,
        last_user_text=text_of(users[-1].get("content")) if users else "",
    )


def _chat_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{call.id}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.custom_input
                if call.custom_input is not None
                else json.dumps(dict(call.arguments)),
            },
        }
        for call in reply.calls
    ]


def render_chat(reply: Reply, conv: Conversation) -> HttpResponse:
    finish = "tool_calls" if reply.calls else "stop"
    usage = {
        "prompt_tokens": reply.usage.input_tokens,
        "completion_tokens": reply.usage.output_tokens,
        "total_tokens": reply.usage.input_tokens + reply.usage.output_tokens,
    }
    base = {"id": f"chatcmpl-{reply.response_id}", "created": int(time.time()), "model": conv.model}
    calls = _chat_tool_calls(reply)
    if not conv.stream:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if calls:
            message["tool_calls"] = calls
        return json_response(
            200,
            {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )
    chunk = {**base, "object": "chat.completion.chunk"}
    events: list[tuple[str | None, Any]] = []

    def delta(payload: dict[str, Any], finish_reason: str | None = None) -> None:
        choice = {"index": 0, "delta": payload, "finish_reason": finish_reason}
        events.append((None, {**chunk, "choices": [choice]}))

    delta({"role": "assistant", "content": ""})
    if reply.text:
        delta({"content": reply.text})
    for index, call in enumerate(calls):
        delta({"tool_calls": [{"index": index, **call}]})
    delta({}, finish)
    events.append((None, {**chunk, "choices": [], "usage": usage}))
    return sse_response(events, done_marker=True)


def error(status: int, message: str) -> HttpResponse:
    kind, code = _ERROR_CODES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return json_response(
        status,
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        {"x-should-retry": "false"},
    )

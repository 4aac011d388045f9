"""The Anthropic Messages API (``POST /v1/messages``), as Claude Code and OpenCode call it."""

from __future__ import annotations

import json
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

__all__ = ["count_tokens", "error", "parse", "render"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def api_key(headers: Mapping[str, str]) -> str:
    key = headers.get("x-api-key", "")
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        key = key or auth[7:]
    return key


def parse(body: Mapping[str, Any], headers: Mapping[str, str]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    roles = [m.get("role") == "assistant" for m in messages]
    first_prompt = []
    last_user = ""
    for message in messages:
        if message.get("role") == "assistant":
            break
        first_prompt.append(text_of(message.get("content")))
    for message in messages:
        if message.get("role") == "user":
            last_user = text_of(message.get("content"))
    tools: dict[str, ToolSpec] = {}
    for tool in body.get("tools") or []:
        if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            props, arrays = schema_properties(tool.get("input_schema"))
            tools[tool["name"]] = ToolSpec(tool["name"], properties=props, array_params=arrays)
    wants_json = None
    output_format = body.get("output_format")
    if isinstance(output_format, Mapping) and isinstance(output_format.get("schema"), Mapping):
        wants_json = output_format["schema"]
    return Conversation(
        dialect="anthropic",
        model=str(body.get("model", "claude")),
        api_key=api_key(headers),
        stream=bool(body.get("stream")),
        tools=tools,
        system=text_of(body.get("system")),
        first_prompt="\n".join(first_prompt),
        model_turns=count_runs(roles),
        wants_json=wants_json,
        last_user_text=last_user,
    )


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_{call.id}",
                "name": call.name,
                "input": dict(call.arguments),
            }
        )
    return blocks


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.usage.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def render(reply: Reply, conv: Conversation) -> HttpResponse:
    stop_reason = "tool_use" if reply.calls else "end_turn"
    message_id = f"msg_{reply.response_id}"
    blocks = _blocks(reply)
    if not conv.stream:
        return json_response(
            200,
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": conv.model,
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": _usage(reply, reply.usage.output_tokens),
            },
            {"request-id": f"req_{reply.response_id}"},
        )
    events: list[tuple[str | None, Any]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": conv.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": _usage(reply, 1),
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    response = sse_response(events)
    return HttpResponse(
        response.status,
        response.content_type,
        response.body,
        {**response.headers, "request-id": f"req_{reply.response_id}"},
    )


def error(status: int, message: str) -> HttpResponse:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json_response(
        status,
        {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_scripted",
        },
        {"x-should-retry": "false", "request-id": "req_scripted"},
    )


def count_tokens(body: Mapping[str, Any]) -> HttpResponse:
    size = len(json.dumps(body.get("messages", [])))
    return json_response(200, {"input_tokens": max(1, size // 4)})

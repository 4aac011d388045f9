"""The Gemini API (``models/{model}:generateContent`` and ``:streamGenerateContent``)."""

from __future__ import annotations

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

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    key = headers.get("x-goog-api-key") or query.get("key", "")
    auth = headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:]
    return key


def parse(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    query: Mapping[str, str],
    model: str,
    stream: bool,
) -> Conversation:
    contents = [c for c in body.get("contents") or [] if isinstance(c, Mapping)]
    first_prompt = []
    for content in contents:
        if content.get("role") == "model":
            break
        first_prompt.append(text_of(content.get("parts")))
    users = [c for c in contents if c.get("role", "user") == "user"]
    tools: dict[str, ToolSpec] = {}
    for tool in body.get("tools") or []:
        if not isinstance(tool, Mapping):
            continue
        for decl in tool.get("functionDeclarations") or []:
            if isinstance(decl, Mapping) and isinstance(decl.get("name"), str):
                schema = decl.get("parametersJsonSchema") or decl.get("parameters")
                props, arrays = schema_properties(schema)
                tools[decl["name"]] = ToolSpec(decl["name"], properties=props, array_params=arrays)
    config = body.get("generationConfig") or {}
    wants_json = None
    if isinstance(config, Mapping) and config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        wants_json = schema if isinstance(schema, Mapping) else {}
    system = body.get("systemInstruction")
    system_text = text_of(system.get("parts")) if isinstance(system, Mapping) else text_of(system)
    return Conversation(
        dialect="gemini",
        model=model,
        api_key=api_key(headers, query),
        stream=stream,
        tools=tools,
        system=system_text,
        first_prompt="\n".join(first_prompt),
        model_turns=count_runs(c.get("role") == "model" for c in contents),
        wants_json=wants_json,
        last_user_text=text_of(users[-1].get("parts")) if users else "",
    )


def render(reply: Reply, conv: Conversation) -> HttpResponse:
    parts: list[dict[str, Any]] = []
    if reply.text:
        parts.append({"text": reply.text})
    for call in reply.calls:
        parts.append({"functionCall": {"name": call.name, "args": dict(call.arguments)}})
    payload = {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": reply.usage.input_tokens,
            "candidatesTokenCount": reply.usage.output_tokens,
            "totalTokenCount": reply.usage.input_tokens + reply.usage.output_tokens,
        },
        "modelVersion": conv.model,
        "responseId": reply.response_id,
    }
    if not conv.stream:
        return json_response(200, payload)
    return sse_response([(None, payload)])


def error(status: int, message: str) -> HttpResponse:
    name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return json_response(status, {"error": {"code": status, "message": message, "status": name}})


def count_tokens(body: Mapping[str, Any]) -> HttpResponse:
    size = len(str(body.get("contents", "")))
    return json_response(200, {"totalTokens": max(1, size // 4)})

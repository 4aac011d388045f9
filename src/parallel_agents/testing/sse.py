"""Small helpers shared by the API dialects: SSE framing, JSON bodies, ids, JSON-from-schema."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from parallel_agents.testing.conversation import HttpResponse

__all__ = ["json_from_schema", "json_response", "sse_response", "stable_id"]


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return HttpResponse(status, "application/json", body, dict(headers or {}))


def sse_response(
    events: Iterable[tuple[str | None, Any]], *, done_marker: bool = False
) -> HttpResponse:
    """A whole SSE stream as one body; ``(name, data)`` pairs, name None for unnamed events."""
    chunks = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        chunks.append(f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n")
    if done_marker:
        chunks.append("data: [DONE]\n\n")
    return HttpResponse(
        200, "text/event-stream", "".join(chunks).encode(), {"cache-control": "no-cache"}
    )


def stable_id(*parts: object, length: int = 24) -> str:
    """A deterministic hex id, so replies to retried requests are byte-identical."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


def json_from_schema(schema: Any, text: str) -> Any:
    """A minimal value that satisfies ``schema`` (for side requests that demand JSON).

    Enums prefer "user" (Gemini CLI's next-speaker check: never make the model talk again).
    """
    if not isinstance(schema, Mapping):
        return text
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return json_from_schema(options[0], text)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return "user" if "user" in enum else enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind or ("object" if "properties" in schema else "string")).lower()
    if kind == "object":
        props = schema.get("properties")
        result: dict[str, Any] = {}
        if isinstance(props, Mapping):
            for name, sub in props.items():
                result[str(name)] = json_from_schema(sub, text)
        return result
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return text

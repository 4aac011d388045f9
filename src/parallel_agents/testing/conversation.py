"""A dialect-neutral view of one model request, and the reply the server gives to it.

Each API module (``anthropic_api``, ``openai_api``, ``gemini_api``) parses its request body into
a :class:`Conversation` and renders a :class:`Reply` back in its own wire format. The rest of
the server (matching, turn counting, tool translation) only sees these two types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from parallel_agents.testing.script import Usage

__all__ = ["Conversation", "HttpResponse", "Reply", "ToolCall", "ToolSpec", "count_runs"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the CLI declared. ``custom`` tools take free text (Codex's apply_patch)."""

    name: str
    custom: bool = False
    properties: frozenset[str] = frozenset()
    array_params: frozenset[str] = frozenset()  # properties whose type is "array"


@dataclass
class Conversation:
    dialect: str  # "anthropic" | "responses" | "chat" | "gemini"
    model: str
    api_key: str
    stream: bool
    tools: dict[str, ToolSpec]
    system: str  # system prompt / instructions text
    first_prompt: str  # user text before the first model turn
    model_turns: int  # model turns already in the history
    wants_json: Mapping[str, Any] | None = None  # a JSON schema the answer must follow
    last_user_text: str = ""

    @property
    def is_mini_swe_agent(self) -> bool:
        return "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in self.system + self.first_prompt

    def working_directory(self) -> str | None:
        """The agent's cwd, as every CLI states it in its system prompt or first message."""
        for text in (self.system, self.first_prompt):
            for pattern in _CWD_PATTERNS:
                found = pattern.search(text)
                if found:
                    return found.group(1).strip().rstrip(".")
        return None


_CWD_PATTERNS = [
    re.compile(r"<cwd>\s*([^<\n]+?)\s*</cwd>"),  # Codex environment_context
    re.compile(r"Primary working directory:\s*(/[^\s]+)"),  # Claude Code
    re.compile(r"Working directory:\s*(/[^\s]+)"),  # Claude Code, OpenCode
    re.compile(r"Workspace Directories:\**\s*\n\s*-\s*(/[^\s]+)"),  # Gemini CLI
    re.compile(r"[Cc]urrent working directory:?\s*(/[^\s]+)"),
]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    custom_input: str | None = None  # set for custom (free-text) tools


@dataclass(frozen=True)
class Reply:
    text: str | None
    calls: tuple[ToolCall, ...]
    usage: Usage
    response_id: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def count_runs(roles: Iterable[bool]) -> int:
    """Count maximal runs of True: one model turn may span several consecutive items."""
    runs = 0
    previous = False
    for is_model in roles:
        if is_model and not previous:
            runs += 1
        previous = is_model
    return runs


def text_of(content: Any, keys: tuple[str, ...] = ("text",)) -> str:
    """Concatenate the text in a message content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, Mapping):
                for key in keys:
                    value = part.get(key)
                    if isinstance(value, str):
                        pieces.append(value)
        return "\n".join(pieces)
    return ""


def schema_properties(schema: Any) -> tuple[frozenset[str], frozenset[str]]:
    """Declared property names of a JSON schema, and those whose type is an array."""
    if not isinstance(schema, Mapping):
        return frozenset(), frozenset()
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return frozenset(), frozenset()
    arrays = set()
    for name, spec in props.items():
        if isinstance(spec, Mapping):
            kind = spec.get("type")
            if kind == "array" or kind == "ARRAY" or (isinstance(kind, list) and "array" in kind):
                arrays.add(str(name))
    return frozenset(str(p) for p in props), frozenset(arrays)

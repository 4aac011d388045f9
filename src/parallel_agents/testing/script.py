"""The script a :class:`ScriptedModelServer` plays: sessions of model turns, CLI-neutral.

A script is a list of sessions (or a mapping with a ``sessions`` list). Each session has a
``match`` token and a list of ``turns``; each turn is what the model says once::

    - match: hello-task            # in the API key, or in the conversation's first prompt
      turns:
        - say: I'll create the file.           # optional text before the tool calls
          write: {path: hello.txt, content: "hello\\n"}
        - text: Done. Created hello.txt.       # final answer: the CLI's turn ends
        # a follow-up (the CLI's own session resumed with a new prompt) continues here
        - run: echo bye > bye.txt
        - text: Bye.

Turn forms: ``{text}``; one action (``run`` / ``write`` / ``tool``) or several (``calls: [...]``),
each with optional ``say``; ``{error: {status, message, times?}}``. Any turn may carry
``usage: {input_tokens, output_tokens}`` and ``delay`` (seconds before the answer is sent).
An error with ``times: N`` is transient: it answers the first N requests at that point of
the conversation and then steps aside; without ``times`` it answers every time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Action",
    "ErrorTurn",
    "ModelTurn",
    "RawTool",
    "Run",
    "Script",
    "ScriptError",
    "ScriptSession",
    "Turn",
    "Usage",
    "Write",
    "load_script",
]


class ScriptError(ValueError):
    """The script is malformed; the message says where."""


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Run:
    """Run a shell command in the agent's working directory."""

    command: str


@dataclass(frozen=True)
class Write:
    """Create or overwrite a file; ``path`` is relative to the agent's working directory."""

    path: str
    content: str


@dataclass(frozen=True)
class RawTool:
    """Call a tool by its exact name with exact arguments (an escape hatch for one CLI)."""

    name: str
    arguments: Mapping[str, Any]


Action = Run | Write | RawTool


@dataclass(frozen=True)
class ModelTurn:
    """An answer: tool calls (the CLI runs them and asks again) or, without any, final text."""

    text: str | None = None
    actions: tuple[Action, ...] = ()
    usage: Usage | None = None
    delay: float = 0.0

    @property
    def is_final(self) -> bool:
        return not self.actions


@dataclass(frozen=True)
class ErrorTurn:
    status: int
    message: str
    times: int | None = None  # None: every time; N: the first N requests, then the next turn
    delay: float = 0.0

    @property
    def transient(self) -> bool:
        return self.times is not None


Turn = ModelTurn | ErrorTurn


@dataclass(frozen=True)
class ScriptSession:
    name: str
    match: str  # "" matches every request
    turns: tuple[Turn, ...]

    def answer_turns(self) -> list[tuple[tuple[tuple[int, ErrorTurn], ...], Turn]]:
        """Turns that count as one model turn each, with the transient errors before each.

        The n-th entry answers a request whose conversation already holds n model turns.
        Each transient error keeps its index in ``turns`` (its identity for counting).
        """
        result: list[tuple[tuple[tuple[int, ErrorTurn], ...], Turn]] = []
        pending: list[tuple[int, ErrorTurn]] = []
        for index, turn in enumerate(self.turns):
            if isinstance(turn, ErrorTurn) and turn.transient:
                pending.append((index, turn))
                continue
            result.append((tuple(pending), turn))
            pending = []
        return result


@dataclass(frozen=True)
class Script:
    sessions: tuple[ScriptSession, ...] = field(default_factory=tuple)
    # Answer to side requests that declare no tools (titles, summaries, classifiers).
    utility_text: str = "OK"


def load_script(source: Path | str | Mapping[str, Any] | Sequence[Any]) -> Script:
    """Load a script from a YAML/JSON file path, or from already-parsed data."""
    data: Any
    where = "script"
    if isinstance(source, Path | str):
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror}") from exc
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ScriptError(
                f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
            ) from exc
    else:
        data = source
    return _parse_script(data, where)


def _parse_script(data: Any, where: str) -> Script:
    utility_text = "OK"
    if isinstance(data, Mapping):
        unknown = set(data) - {"sessions", "utility_text"}
        if unknown:
            raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}")
        utility_text = _str(data.get("utility_text", utility_text), f"{where}.utility_text")
        data = data.get("sessions")
    if not isinstance(data, list) or not data:
        raise ScriptError(f"{where}: expected a non-empty list of sessions")
    sessions = []
    names: set[str] = set()
    for index, raw in enumerate(data):
        session = _parse_session(raw, f"{where}[{index}]", index)
        if session.name in names:
            raise ScriptError(f"{where}[{index}]: duplicate session name {session.name!r}")
        names.add(session.name)
        sessions.append(session)
    return Script(sessions=tuple(sessions), utility_text=utility_text)


def _parse_session(raw: Any, where: str, index: int) -> ScriptSession:
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where}: a session must be a mapping with 'match' and 'turns'")
    unknown = set(raw) - {"name", "match", "turns"}
    if unknown:
        raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}")
    match = _str(raw.get("match", ""), f"{where}.match")
    name = _str(raw.get("name", match or f"session-{index}"), f"{where}.name")
    turns_raw = raw.get("turns")
    if not isinstance(turns_raw, list) or not turns_raw:
        raise ScriptError(f"{where}.turns: expected a non-empty list of turns")
    turns = tuple(_parse_turn(t, f"{where}.turns[{i}]") for i, t in enumerate(turns_raw))
    return ScriptSession(name=name, match=match, turns=turns)


_ACTION_KEYS = ("run", "write", "tool")


def _parse_turn(raw: Any, where: str) -> Turn:
    if isinstance(raw, str):
        return ModelTurn(text=raw)
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where}: a turn must be a mapping (or a string of final text)")
    delay = _number(raw.get("delay", 0), f"{where}.delay")
    if "error" in raw:
        unknown = set(raw) - {"error", "delay"}
        if unknown:
            raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)} beside 'error'")
        return _parse_error(raw["error"], f"{where}.error", delay)
    unknown = set(raw) - {"text", "say", "calls", "usage", "delay", *_ACTION_KEYS}
    if unknown:
        raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}")
    usage = _parse_usage(raw["usage"], f"{where}.usage") if "usage" in raw else None
    inline = [key for key in _ACTION_KEYS if key in raw]
    if "calls" in raw and inline:
        raise ScriptError(f"{where}: use either 'calls' or one of {list(_ACTION_KEYS)}, not both")
    if len(inline) > 1:
        raise ScriptError(f"{where}: one action per turn; use 'calls' for several")
    actions: list[Action] = []
    if "calls" in raw:
        calls = raw["calls"]
        if not isinstance(calls, list) or not calls:
            raise ScriptError(f"{where}.calls: expected a non-empty list of actions")
        for i, call in enumerate(calls):
            if not isinstance(call, Mapping) or len(call) != 1:
                raise ScriptError(
                    f"{where}.calls[{i}]: expected one of {{run}}, {{write}} or {{tool}}"
                )
            ((key, value),) = call.items()
            actions.append(_parse_action(str(key), value, f"{where}.calls[{i}]"))
    elif inline:
        actions.append(_parse_action(inline[0], raw[inline[0]], f"{where}.{inline[0]}"))
    if "text" in raw and "say" in raw:
        raise ScriptError(f"{where}: use 'text' for a final answer and 'say' beside tool calls")
    if "text" in raw and actions:
        raise ScriptError(f"{where}: 'text' is a final answer; use 'say' beside tool calls")
    if "say" in raw and not actions:
        raise ScriptError(f"{where}: 'say' needs tool calls; a final answer uses 'text'")
    text_key = "text" if "text" in raw else "say"
    text = _str(raw[text_key], f"{where}.{text_key}") if text_key in raw else None
    if text is None and not actions:
        raise ScriptError(f"{where}: a turn needs 'text', an action, 'calls' or 'error'")
    return ModelTurn(text=text, actions=tuple(actions), usage=usage, delay=delay)


def _parse_action(key: str, value: Any, where: str) -> Action:
    if key == "run":
        return Run(command=_str(value, where))
    if key == "write":
        if not isinstance(value, Mapping) or set(value) != {"path", "content"}:
            raise ScriptError(f"{where}: expected {{path: ..., content: ...}}")
        path = _str(value["path"], f"{where}.path")
        if not path or path.startswith("/"):
            raise ScriptError(f"{where}.path: must be relative to the working directory")
        return Write(path=path, content=_str(value["content"], f"{where}.content"))
    if key == "tool":
        if not isinstance(value, Mapping) or "name" not in value:
            raise ScriptError(f"{where}: expected {{name: ..., arguments: {{...}}}}")
        arguments = value.get("arguments", {})
        if not isinstance(arguments, Mapping):
            raise ScriptError(f"{where}.arguments: expected a mapping")
        return RawTool(name=_str(value["name"], f"{where}.name"), arguments=dict(arguments))
    raise ScriptError(f"{where}: unknown action {key!r} (expected run, write or tool)")


def _parse_error(raw: Any, where: str, delay: float) -> ErrorTurn:
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where}: expected {{status: ..., message: ...}}")
    unknown = set(raw) - {"status", "message", "times"}
    if unknown:
        raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}")
    status = raw.get("status", 500)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ScriptError(f"{where}.status: expected an HTTP error status (400-599)")
    times = raw.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ScriptError(f"{where}.times: expected a positive integer")
    message = _str(raw.get("message", f"scripted error {status}"), f"{where}.message")
    return ErrorTurn(status=status, message=message, times=times, delay=delay)


def _parse_usage(raw: Any, where: str) -> Usage:
    if not isinstance(raw, Mapping) or set(raw) - {"input_tokens", "output_tokens"}:
        raise ScriptError(f"{where}: expected {{input_tokens: N, output_tokens: N}}")
    values = {}
    for key in ("input_tokens", "output_tokens"):
        value = raw.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ScriptError(f"{where}.{key}: expected a non-negative integer")
        values[key] = value
    return Usage(**values)


def _str(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ScriptError(f"{where}: expected a string")
    return str(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScriptError(f"{where}: expected a non-negative number of seconds")
    return float(value)

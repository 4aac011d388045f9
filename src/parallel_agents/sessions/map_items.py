"""What `pa map` reads and what its mappers write back (issue 15 §4): the item list, the
prompt template, and the outcome record. Plain data in, plain data out: no store, no git.

Items are one a line (blank lines skipped), or JSON lines when the first item starts
with ``{``: then every line is one JSON object and its keys are placeholders too.
A template names them as ``{item}`` (the whole line) or ``{FIELD}``; ``{{`` and ``}}``
are literal braces. Every placeholder of every item is checked before anything starts,
so a bad template or a missing field is one clear error, not 500 half-made sessions.

A mapper reports how it went in an *outcome record*: one JSON object
``{"status": "success" | "failure" | "skip", "summary": "..."}`` written to the file
``$PA_OUTCOME`` names. A missing or malformed record is never an error: the outcome is
then derived from how the turn ended, and says so.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.errors import UsageError

OUTCOME_ENV = "PA_OUTCOME"
OUTCOME_STATUSES = ("success", "failure", "skip")
MAX_OUTCOME_BYTES = 64 * 1024  # a record is a status and a few sentences
MAX_SUMMARY = 2000  # characters of a summary kept
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HINT = (
    "placeholders are {item} (the whole line) or {FIELD} of a JSON-lines item; write {{ and }}"
    " for literal braces"
)


@dataclass(frozen=True)
class Item:
    line: int  # where it was in the input (1-based), for errors
    text: str  # the whole line: ``{item}``
    fields: dict[str, str] | None  # a JSON line's keys, values as text; None: plain line


def parse_items(text: str) -> list[Item]:
    """The items of ``text``: plain lines, or JSON objects one a line."""
    if "\0" in text:
        raise UsageError("the item list contains a NUL byte (\\0)", hint="remove it")
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise UsageError(
            "the item list is empty: there is nothing to map over",
            hint="give one item a line (or one JSON object a line) in --items FILE, or on "
            "stdin with --items -",
        )
    if not lines[0][1].startswith("{"):
        return [Item(n, ln, None) for n, ln in lines]
    items = []
    for n, ln in lines:
        try:
            obj = json.loads(ln)
        except ValueError as e:
            raise UsageError(
                f"item line {n} is not a JSON object ({e})",
                hint="the first item is JSON, so every line must be one JSON object; "
                "for plain text items do not start the first line with '{'",
            ) from None
        if not isinstance(obj, dict):
            raise UsageError(f"item line {n} is JSON but not an object", hint=_HINT)
        fields = {
            str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k, v in obj.items()
        }
        items.append(Item(n, ln, fields))
    return items


def parse_template(template: str) -> list[tuple[str, str | None]]:
    """The template as (literal text, placeholder or None) pieces; UsageError when it is
    not one pa can fill (unbalanced braces, ``{a.b}``, ``{x!r}``, ``{x:>5}``, ``{}``,
    or no placeholder at all)."""
    if not template.strip():
        raise UsageError("the template is empty", hint="say what each agent should do with {item}")
    if "\0" in template:
        raise UsageError("the template contains a NUL byte (\\0)", hint="remove it")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise UsageError(f"the template is not valid: {e}", hint=_HINT) from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conv in parsed:
        if literal:
            pieces.append((literal, None))
        if name is None:
            continue
        if not _NAME.fullmatch(name) or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise UsageError(f"the template's placeholder {shown} is not one pa fills", hint=_HINT)
        pieces.append(("", name))
    if not any(name for _, name in pieces):
        raise UsageError(
            "the template has no placeholder: every agent would get the same prompt",
            hint="put {item} where each item goes (or {FIELD} for JSON-lines items)",
        )
    return pieces


def render(pieces: Sequence[tuple[str, str | None]], items: Sequence[Item]) -> list[str]:
    """Each item's prompt; UsageError naming the first placeholder an item cannot fill."""
    out = []
    for it in items:
        parts = []
        for literal, name in pieces:
            if name is None:
                parts.append(literal)
            elif name == "item":
                parts.append(it.text)
            elif it.fields is None:
                raise UsageError(
                    f"the template's placeholder {{{name}}} is unknown: plain items only "
                    "fill {item}",
                    hint="use {item}, or give JSON-lines items that have the field "
                    f"{name!r}",
                )
            elif name not in it.fields:
                have = ", ".join(sorted(it.fields)) or "none"
                raise UsageError(
                    f"item line {it.line} has no field {name!r} for the template's "
                    f"placeholder {{{name}}}",
                    hint=f"its fields: {have}",
                )
            else:
                parts.append(it.fields[name])
        out.append("".join(parts))
    return out


# -- outcome records -----------------------------------------------------------------
def read_outcome(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a valid record at ``path``; (None, why) when it is missing or
    malformed."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_OUTCOME_BYTES + 1)
    except FileNotFoundError:
        return None, f"no outcome record (${OUTCOME_ENV} was not written)"
    except OSError as e:
        return None, f"the outcome record could not be read: {e}"
    if len(data) > MAX_OUTCOME_BYTES:
        return None, f"the outcome record is malformed: larger than {MAX_OUTCOME_BYTES} bytes"
    try:
        obj = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return None, f"the outcome record is malformed: not JSON ({e})"
    if not isinstance(obj, dict):
        return None, "the outcome record is malformed: not a JSON object"
    status = obj.get("status")
    if status not in OUTCOME_STATUSES:
        return None, (
            f"the outcome record is malformed: status {status!r} is not one of "
            + ", ".join(OUTCOME_STATUSES)
        )
    summary = obj.get("summary", "")
    if not isinstance(summary, str):
        return None, "the outcome record is malformed: summary is not text"
    return {"status": status, "summary": summary[:MAX_SUMMARY]}, None


def outcome_instructions(path: Path) -> str:
    """What pa adds to every mapper's prompt: how to report its outcome."""
    return (
        "\n\n---\nWhen you are done, write your outcome as one JSON object to the file named "
        f"by the environment variable {OUTCOME_ENV} ({path}), for example:\n"
        '{"status": "success", "summary": "what you changed, in a sentence or two"}\n'
        'status is "success" (you made the change), "failure" (you could not) or "skip" '
        "(nothing to do for this item). Do not write that file into the repository."
    )

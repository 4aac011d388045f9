"""Issue 12 item 6: error messages never show the API framework's validation text.

A request the API cannot accept (a turn of 0, a timeout of 0) is refused with a plain
sentence that names the option, not pydantic's "query.turn: Input should be …".
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from parallel_agents.server.errors import validation_message
from tests.server.conftest import Srv, pa_cli

LEAKS = ("Input should", "query.", "invalid request", "greater_than", "Field required")


def test_cli_errors_from_the_server_are_plain_sentences(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """Issue 12 item 6: `pa diff ID --turn 0`, `pa rollback ID --turn 0` and
    `pa new --timeout 0` through the server say "turn must be 1 or more" / "timeout must
    be more than 0" (they printed "query.turn: Input should be greater than or equal to
    1"), exit 2, and print no traceback."""
    srv = start_server()
    env = {"PA_HOME": str(srv.home)}
    [s] = srv.client.new_sessions("hi", repo=repo_path, cmd=[sys.executable, "-c", "pass"])
    srv.wait_status(s["id"], "idle")
    for args, sentence in (
        (("diff", s["id"], "--turn", "0"), "error: turn must be 1 or more"),
        (("rollback", s["id"], "--turn", "0"), "error: turn must be 1 or more"),
        (
            ("new", "x", "--repo", str(repo_path), "--cmd", "true", "--timeout", "0"),
            "error: timeout must be more than 0",
        ),
    ):
        p = pa_cli(*args, env=env)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stderr.strip().splitlines()[0] == sentence, p.stderr
        assert not any(leak in p.stderr for leak in LEAKS), p.stderr
        assert "Traceback" not in p.stderr


def test_validation_message_words() -> None:
    """Issue 12 item 6: each kind of validation error becomes a sentence naming the field,
    without the location prefixes (body, query) or pydantic's wording."""
    cases = [
        ({"type": "greater_than_equal", "loc": ("query", "turn"), "ctx": {"ge": 1}}, "turn must be 1 or more"),
        ({"type": "greater_than", "loc": ("body", "timeout"), "ctx": {"gt": 0}}, "timeout must be more than 0"),
        ({"type": "less_than_equal", "loc": ("body", "count"), "ctx": {"le": 100}}, "count must be 100 or less"),
        ({"type": "missing", "loc": ("body", "prompt")}, "prompt is required"),
        ({"type": "int_parsing", "loc": ("query", "turn")}, "turn must be a whole number"),
        ({"type": "too_short", "loc": ("body", "ids"), "ctx": {"min_length": 1}}, "ids must not be empty"),
        ({"type": "json_invalid", "loc": ("body", 7)}, "the request body is not valid JSON"),
        ({"type": "something_new", "loc": ("body", "x")}, "x is not valid"),
    ]
    for err, want in cases:
        assert validation_message([err]) == want
    both = validation_message([cases[0][0], cases[3][0]])
    assert both == "turn must be 1 or more; prompt is required"

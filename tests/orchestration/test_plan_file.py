"""Issue 15 §1: the plan file. Its parser refuses every bad plan with errors naming the
task, and docs/plan.schema.json (checked with jsonschema-rs, which the test extras bring
in through schemathesis) agrees with the parser on valid and invalid examples."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema_rs
import pytest

from parallel_agents.errors import UsageError
from parallel_agents.sessions.plan_file import find_cycles, parse_plan

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "plan.schema.json").read_text("utf-8")
)
KNOWN = {"command", "claude", "codex"}.__contains__

VALID = {
    "minimal": 'tasks = [{id = "a", prompt = "do a", cmd = "true"}]',
    "full": """
name = "login-rework"
description = "the login page, end to end"
[defaults]
agent = "claude"
model = "sonnet"
repo = "app"
base = "main"
after = "merged"
auto_merge = true
check = "pytest -q"
timeout = 600

[[tasks]]
id = "schema"
title = "Users table"
prompt = "add the users table"
conflicts_with = ["api"]

[[tasks]]
id = "api"
prompt = "add the login endpoint"
agent = "codex"
depends_on = ["schema"]
after = "done"
auto_merge = false
attempts = 1

[[tasks]]
id = "script"
prompt = "write the seed script"
agent = "command"
cmd = ["python3", "seed.py", "--all"]
depends_on = ["schema", "api"]
""",
}

# name -> (plan, a piece of the parser's message, whether the schema can see it too)
INVALID = {
    "no tasks": ('name = "p"', "has no tasks", True),
    "empty task list": ("tasks = []", "has no tasks", True),
    "unknown top key": ('nme = "p"\n[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"', "unknown key 'nme'", True),
    "unknown task key": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\ndepends = ["b"]', "task 'a': unknown key 'depends'", True),
    "empty prompt": ('[[tasks]]\nid = "a"\nprompt = "  "\ncmd = "true"', "task 'a': the prompt is empty", True),
    "no prompt": ('[[tasks]]\nid = "a"\ncmd = "true"', "task 'a': the prompt is empty", True),
    "no id": ('[[tasks]]\nprompt = "x"\ncmd = "true"', "task #1: has no id", True),
    "bad id": ('[[tasks]]\nid = "a b"\nprompt = "x"\ncmd = "true"', "task 'a b': the id may hold", True),
    "bad after": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\nafter = "started"', "task 'a': after must be", True),
    "bad auto_merge": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\nauto_merge = "yes"', "task 'a': auto_merge must be", True),
    "bad depends_on type": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\ndepends_on = "b"', "task 'a': depends_on must be a list", True),
    "bad default": ('[defaults]\nafter = "never"\n[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"', "defaults: after must be", True),
    "attempts 0": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\nattempts = 0', "task 'a': attempts must be", True),
    "bad timeout": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\ntimeout = 0', "task 'a': timeout must be", True),
    "bad cmd": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = []', "task 'a': cmd must be", True),
    # Beyond a schema: ids, the graph, the registry.
    "duplicate id": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\n[[tasks]]\nid = "a"\nprompt = "y"\ncmd = "true"', "task 'a': the id is used by two tasks", False),
    "unknown dependency": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\ndepends_on = ["nope"]', "task 'a': depends_on names 'nope', which is no task", False),
    "unknown conflict": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\nconflicts_with = ["zz"]', "task 'a': conflicts_with names 'zz'", False),
    "self dependency": ('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\ndepends_on = ["a"]', "task 'a': depends_on names the task itself", False),
    "unknown agent": ('[[tasks]]\nid = "a"\nprompt = "x"\nagent = "gpt-9"', "task 'a': unknown agent 'gpt-9'", False),
    "command without cmd": ('[[tasks]]\nid = "a"\nprompt = "x"\nagent = "command"', "task 'a': the command agent needs cmd", False),
}


def _schema_ok(text: str) -> bool:
    return bool(jsonschema_rs.validator_for(SCHEMA).is_valid(tomllib.loads(text)))


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_plans_pass_the_parser_and_the_schema(name: str) -> None:
    """issue 15 §1: a valid plan reads the same through the parser and the schema."""
    text = VALID[name]
    plan = parse_plan(text, known_agent=KNOWN)
    assert plan.tasks
    assert _schema_ok(text)


def test_defaults_fill_the_tasks() -> None:
    """issue 15 §1: [defaults] apply to every task that does not set the option itself."""
    plan = parse_plan(VALID["full"], known_agent=KNOWN)
    schema, api, script = plan.tasks
    assert (plan.name, schema.agent, schema.model, schema.auto_merge) == ("login-rework", "claude", "sonnet", True)
    assert (schema.after, schema.check, schema.repo, schema.base, schema.timeout) == ("merged", "pytest -q", "app", "main", 600.0)
    assert (api.agent, api.after, api.auto_merge, api.depends_on) == ("codex", "done", False, ["schema"])
    assert script.cmd == ["python3", "seed.py", "--all"]
    assert schema.title == "Users table" and api.title == "add the login endpoint"
    minimal = parse_plan(VALID["minimal"], known_agent=KNOWN).tasks[0]
    assert (minimal.agent, minimal.cmd, minimal.after, minimal.auto_merge) == ("command", ["true"], "merged", False)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_plans_are_refused_naming_the_task(name: str) -> None:
    """issue 15 §1: every bad plan is refused with a message naming the task (or the
    key) at fault; the schema refuses the same plans wherever a schema can tell."""
    text, piece, schema_sees_it = INVALID[name]
    with pytest.raises(UsageError) as e:
        parse_plan(text, source="p.toml", known_agent=KNOWN)
    assert piece in e.value.message, e.value.message
    assert e.value.message.startswith("p.toml is not a valid plan")
    assert e.value.hint and "plan.schema.json" in e.value.hint
    if schema_sees_it:
        assert not _schema_ok(text), name
    else:
        assert _schema_ok(text), f"{name}: the schema cannot see this; the parser must"


def test_a_cycle_is_named_in_order() -> None:
    """issue 15 §1: a dependency cycle is refused and the message walks it."""
    text = "\n".join(
        f'[[tasks]]\nid = "{t}"\nprompt = "x"\ncmd = "true"\ndepends_on = ["{d}"]'
        for t, d in (("a", "c"), ("b", "a"), ("c", "b"))
    )
    text += '\n[[tasks]]\nid = "free"\nprompt = "x"\ncmd = "true"'
    with pytest.raises(UsageError) as e:
        parse_plan(text, known_agent=KNOWN)
    assert "task 'a': its dependencies form a cycle: a -> c -> b -> a" in e.value.message
    assert "free" not in e.value.message
    assert _schema_ok(text)  # a schema cannot see a cycle
    assert find_cycles({"x": ["y"], "y": ["x"], "z": ["x"]}) == [["x", "y"]]
    assert find_cycles({"x": ["y"], "y": [], "z": ["x", "y"]}) == []


def test_every_problem_is_listed_at_once() -> None:
    """issue 15 §1: one run of the parser names all the problems, not only the first."""
    text = '[[tasks]]\nid = "a"\nprompt = ""\ncmd = "true"\n[[tasks]]\nid = "b"\nprompt = "x"\nagent = "nope"\ndepends_on = ["zz"]'
    with pytest.raises(UsageError) as e:
        parse_plan(text, known_agent=KNOWN)
    msg = e.value.message
    assert "(3 problems)" in msg
    for piece in ("task 'a': the prompt is empty", "task 'b': unknown agent 'nope'", "task 'b': depends_on names 'zz'"):
        assert piece in msg


def test_not_toml_is_a_clear_error() -> None:
    """issue 15 §1: a file that is not TOML says so, with the parser's line."""
    with pytest.raises(UsageError, match=r"plan.yaml is not valid TOML: .*line 1"):
        parse_plan("tasks:\n  - id: a\n", source="plan.yaml", known_agent=KNOWN)


def test_the_registry_knows_the_agents() -> None:
    """issue 15 §1: without a stand-in, agents are looked up in the agent registry."""
    parse_plan('[[tasks]]\nid = "a"\nprompt = "x"\nagent = "claude"')
    with pytest.raises(UsageError, match=r"unknown agent 'clod'.*known: .*claude"):
        parse_plan('[[tasks]]\nid = "a"\nprompt = "x"\nagent = "clod"')


def test_the_readme_example_is_a_valid_plan() -> None:
    """issue 15 §1: the plan the README shows is one the parser and the schema accept."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme[readme.index("\n## Plans\n") :]
    text = section[section.index("```toml\n") + 8 : section.index("\n```\n")]
    plan = parse_plan(text, known_agent=KNOWN)
    assert [t.id for t in plan.tasks] == ["schema", "api", "docs", "ui"]
    assert _schema_ok(text)

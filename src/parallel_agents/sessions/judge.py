"""The judge of an attempts group (issue 15 §2): one more agent session reads the
attempts' diffs and check output and answers with a ranking, which is validated before
it counts. It is never trusted blindly: an answer that is not the shape below, that
misses an attempt, names one twice or scores outside 0..10 is an error, not a ranking.

The answer, anywhere in the judge's final text (a ```json fence is fine), best first::

    {"ranking": [{"attempt": "2", "score": 8, "reason": "the only one with a test"},
                 {"attempt": "1", "score": 5, "reason": "works, but no test"}]}

The judge works in a worktree of its own on the attempts' base: the diffs travel in its
prompt, not as paths into the attempts' worktrees, so it has nothing of theirs to change.
Once its answer is read, its worktree is discarded (archived like any discard).

Starting a judge returns at once; its answer is read (``collect``) by the next look at the
group, so a judge survives a server restart and the dashboard can start one too. The
state lives in the group's spec under ``judge``: ``state`` running/done/failed, ``agent``,
``session``, ``attempts`` (the keys it was shown), ``timeout``, and ``ranking`` (each
entry with its ``rank``) or ``error``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.models import Session, Status
from parallel_agents.store import Store
from parallel_agents.store._groups import Group

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

TIMEOUT = 600.0  # seconds a judge may take, by default
# Seconds a judge may wait for a place among the running sessions beyond its timeout.
QUEUE_GRACE = 60.0
DIFF_BUDGET = 90_000  # characters of diff in the prompt, over all attempts (argv limits)
TAIL = 2_000  # characters of a check's output
SCORE_MAX = 10


def _diff(store: Store, s: Session, limit: int) -> str:
    from parallel_agents.sessions import review

    try:
        chunks, _ = review.diff_text(store, s, None)
    except PAError as e:
        return f"(no diff: {e.message})"
    parts: list[str] = []
    size = 0
    for c in chunks:
        parts.append(c)
        size += len(c)
        if size > limit:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # ends the git process behind the stream
            break
    text = "".join(parts)
    if len(text) > limit:
        text = text[:limit] + f"\n… (cut: the diff is longer than {limit} characters)\n"
    return text or "(no changes)\n"


def prompt(store: Store, g: Group, attempts: list[tuple[str, Session]]) -> str:
    """The judge's prompt: the task, then each attempt's status, check and diff."""
    per = max(2_000, DIFF_BUDGET // max(1, len(attempts)))
    keys = ", ".join(f'"{k}"' for k, _ in attempts)
    out = [
        f"You are judging {len(attempts)} attempts by coding agents at the same task, each "
        "made on the same base commit. Do not change any files: read, compare, and answer.",
        "",
        "The task each attempt was given:",
        "<<<",
        str(g.spec.get("prompt", "")).strip(),
        ">>>",
    ]
    for key, s in attempts:
        out += ["", f"## Attempt {key} (agent {s.agent}, status {s.status.value})"]
        chk = store.last_check(s.id)
        if chk is None:
            out.append("Check: not run.")
        else:
            verdict = "passed" if chk["ok"] else ("timed out" if chk["timed_out"] else "failed")
            out.append(f"Check `{chk['command']}`: {verdict} (exit {chk['exit_code']}).")
            tail = str(chk.get("output_tail") or "")[-TAIL:].strip()
            if tail:
                out += ["Check output (end):", "```", tail, "```"]
        out += ["Diff against the base:", "```diff", _diff(store, s, per).rstrip("\n"), "```"]
    out += [
        "",
        "Rank every attempt exactly once, best first. Answer with one JSON object and "
        "nothing else, in this shape (score: a number from 0 to 10; reason: a sentence or two):",
        '{"ranking": [{"attempt": "1", "score": 7, "reason": "…"}]}',
        f"The attempts to rank: {keys}.",
    ]
    return "\n".join(out) + "\n"


def _objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects with a "ranking" key found in ``text``, last first."""
    found: list[dict[str, Any]] = []
    dec = json.JSONDecoder()
    text = text[-200_000:]
    i = text.rfind("{")
    tries = 0
    while i >= 0 and tries < 5_000:
        tries += 1
        try:
            obj, _ = dec.raw_decode(text, i)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "ranking" in obj:
            found.append(obj)
            break  # the last complete one is the answer
        i = text.rfind("{", 0, i)
    return found


def parse_ranking(text: str, keys: list[str]) -> list[dict[str, Any]]:
    """The validated ranking in the judge's answer ``text``: every attempt of ``keys`` once,
    scores 0..10, a reason each. ValueError says what is wrong."""
    objs = _objects(text)
    if not objs:
        raise ValueError('no JSON object with a "ranking" list in the answer')
    ranking = objs[0].get("ranking")
    if not isinstance(ranking, list) or not ranking:
        raise ValueError('"ranking" is not a non-empty list')
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for i, item in enumerate(ranking, 1):
        if not isinstance(item, dict):
            raise ValueError(f"ranking entry {i} is not an object")
        raw = item.get("attempt")
        key = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
        if key not in keys:
            raise ValueError(
                f"ranking entry {i} names attempt {raw!r}, not one of {', '.join(keys)}"
            )
        if key in seen:
            raise ValueError(f"attempt {key} is ranked twice")
        seen.add(key)
        score = item.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"attempt {key}: score {score!r} is not a number")
        if not 0 <= score <= SCORE_MAX:
            raise ValueError(f"attempt {key}: score {score!r} is not between 0 and {SCORE_MAX}")
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"attempt {key} has no reason")
        out.append({"attempt": key, "rank": i, "score": score, "reason": reason.strip()[:2000]})
    missing = [k for k in keys if k not in seen]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ValueError(f"attempt{plural} {', '.join(missing)} not ranked")
    return out


def answer_texts(store: Store, sid: str) -> list[str]:
    """Where the judge's answer may be, most likely first: its result, its messages, its
    plain output (the command agent's)."""
    evs = store.events(sid, kinds=["result", "message", "output"], with_raw=False)
    results = [str(e.payload.get("text") or "") for e in evs if e.kind == "result"]
    messages = "\n".join(str(e.payload.get("text") or "") for e in evs if e.kind == "message")
    output = "\n".join(str(e.payload.get("text") or "") for e in evs if e.kind == "output")
    return [t for t in (*reversed(results), messages, output) if t.strip()]


def start(
    app: App,
    g: Group,
    attempts: list[tuple[str, Session]],
    agent: str,
    *,
    cmd: list[str] | None = None,
    model: str | None = None,
    timeout: float | None = None,
) -> Group:
    """Start the judge's session over ``attempts`` (key, session) and record it."""
    store = app.store
    j = g.spec.get("judge") or {}
    if j.get("state") == "running":
        raise Conflict(
            f"a judge ({j.get('agent')}, session {j.get('session')}) is already at work on "
            f"group {g.name}",
            hint=f"wait for its answer: pa compare {g.name}",
        )
    if not attempts:
        raise Conflict(f"group {g.name} has no attempt with a session to judge")
    busy = [k for k, s in attempts if s.status.active]
    if busy:
        raise Conflict(
            f"attempt{'s' if len(busy) > 1 else ''} {', '.join(busy)} of group {g.name} "
            "still working: a judge reads finished work",
            hint="wait for them: pa wait " + " ".join(s.id for k, s in attempts if k in busy),
        )
    limit = float(timeout) if timeout else TIMEOUT
    if limit <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    text = prompt(store, g, attempts)
    n = 1 + sum(1 for t in store.group_tasks(g.id) if t.key.startswith("judge-"))
    key = f"judge-{n}"
    store.add_group_task(g.id, key, {"agent": agent, "judge": True})
    store.move_task(g.id, key, "starting", expect=["waiting"])
    try:
        s = app.new_session(
            text,
            repo=store.repo(g.repo_id).name if g.repo_id is not None else None,
            agent=agent,
            cmd=cmd,
            model=model,
            base=str(g.spec.get("base_commit") or g.spec.get("base_ref") or "HEAD"),
            title=f"judge of {g.name}",
            timeout=limit,
            options={
                "group": {"id": g.id, "key": key, "kind": g.kind, "name": g.name},
                "judge": True,
            },
        )
    except PAError as e:
        store.move_task(g.id, key, "failed", outcome={"error": e.message})
        raise
    store.move_task(g.id, key, "running", expect=["starting"], session_id=s.id)
    spec = dict(g.spec)
    spec["judge"] = {
        "state": "running",
        "agent": agent,
        "session": s.id,
        "key": key,
        "attempts": [k for k, _ in attempts],
        "timeout": limit,
        "started_at": time.time(),
    }
    return store.set_group(g.id, spec=spec)


def collect(app: App, g: Group) -> Group:
    """Read a running judge's answer once its session ended (or stop it once its time is
    up), validate it and record the ranking or the error; its worktree is then discarded.
    A no-op when no judge is running."""
    store = app.store
    j = g.spec.get("judge") or {}
    if j.get("state") != "running":
        return g
    sid = str(j["session"])
    s = store.session(sid)
    limit = float(j.get("timeout") or TIMEOUT)
    error: str | None = None
    ranking: list[dict[str, Any]] | None = None
    if s.status.active:
        if time.time() - float(j["started_at"]) <= limit + QUEUE_GRACE:
            return g
        app.stop(sid)
        error = f"the judge ({j['agent']}) timed out: no answer in {limit:g} s"
    elif s.status == Status.FAILED and "timed out" in (s.error or ""):
        error = f"the judge ({j['agent']}) timed out: no answer in {limit:g} s"
    elif s.status not in (Status.IDLE, Status.NEEDS_INPUT):
        error = f"the judge's session {sid} ended {s.status.value}" + (
            f": {s.error}" if s.error else ""
        )
    else:
        keys = [str(k) for k in j.get("attempts") or []]
        problems: list[str] = []
        for text in answer_texts(store, sid):
            try:
                ranking = parse_ranking(text, keys)
                break
            except ValueError as e:
                problems.append(str(e))
        if ranking is None:
            why = next((p for p in problems if not p.startswith("no JSON")), None)
            error = "the judge's answer is not a valid ranking: " + (
                why or (problems[0] if problems else "it gave no answer")
            )
    done = "done" if ranking is not None else "failed"
    # Compare and set: of two readers at once, one records the verdict and discards.
    if not store.move_task(g.id, str(j["key"]), done, expect=["running", "starting"]):
        return store.group(g.id)
    j = {**j, "state": done, "ended_at": time.time()}
    if ranking is not None:
        j["ranking"] = ranking
    else:
        j["error"] = error
    g = store.set_group(g.id, spec={**store.group(g.id).spec, "judge": j})
    try:
        app.discard(sid)  # the judge's own worktree: archived, nothing of the attempts'
    except PAError as e:
        store.add_event(sid, "error", {"message": f"could not discard the judge: {e.message}"})
    return g

"""A reviewer agent (issue 15 §3): a second agent reads a session's diff and answers with
line comments in the shape the dashboard's review comments have; a person sends them (all
or some) to the author as one follow-up.

The reviewer is a session of its own, tagged ``{"reviews": {"session", "base", "target"}}``
in its options, whose worktree starts at a snapshot of the author's work (``target``): it
reads the code there, and the diff in its prompt, so the author's worktree is never
touched. Its answer is parsed and checked against that diff (every path a file of the
diff, every line a line the diff shows on that side) and stored only when all of it holds:
a malformed answer, a comment on a line not in the diff, a failed or timed-out reviewer
store nothing. Either way the reviewer's worktree is then discarded (archived).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.models import Session, Status

# The reviewer's answer, as its prompt asks for it.
SHAPE = '{"comments": [{"path": "src/app.py", "line": 12, "side": "new", "body": "…"}]}'
MAX_COMMENTS = 200
MAX_BODY = 10_000
# A diff up to this many characters rides in the prompt; a bigger one is named by the
# git command that prints it in the reviewer's worktree (an argv string holds 128 KiB).
PROMPT_DIFF = 100_000
DEFAULT_TIMEOUT = 600.0
WORKING = (Status.QUEUED, Status.STARTING, Status.RUNNING)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class ReviewAnswerError(PAError):
    """The reviewer's answer could not be trusted: nothing of it was stored."""


# -- the diff, as the dashboard shows it ---------------------------------------------------
@dataclass
class FileLines:
    """The lines one file's part of a diff shows, by number, on each side."""

    new: dict[int, str] = field(default_factory=dict)
    old: dict[int, str] = field(default_factory=dict)


def _unquote(name: str) -> str:
    """A path as git wrote it in a diff header: C-quoted when it holds unusual bytes."""
    name = name.rstrip("\t")  # git ends a name holding a space with a tab
    if not (len(name) >= 2 and name[0] == name[-1] == '"'):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    simple = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nx = body[i + 1]
            if nx in "01234567":
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(simple.get(nx, ord(nx)))
            i += 2
            continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", "replace")


def _strip_prefix(name: str) -> str:
    name = _unquote(name)
    return name[2:] if name[:2] in ("a/", "b/") else name


def diff_lines(patch: str) -> dict[str, FileLines]:
    """Each file of a unified ``git diff`` (by its new path; a deleted file by its old
    one) and the lines it shows: what a comment may point at, on the side it names."""
    files: dict[str, FileLines] = {}
    cur: FileLines | None = None
    old_left = new_left = 0
    o = n = 0
    header: dict[str, str] = {}

    def name() -> str:
        for key in ("+++", "rename to", "---", "git"):
            if header.get(key):
                return header[key]
        return ""

    def begin() -> FileLines:
        path = name()
        return files.setdefault(path, FileLines())

    for line in patch.split("\n"):
        if old_left > 0 or new_left > 0:
            tag, text = line[:1], line[1:]
            if tag == " ":
                if cur is not None:
                    cur.old[o], cur.new[n] = text, text
                o, n, old_left, new_left = o + 1, n + 1, old_left - 1, new_left - 1
                continue
            if tag == "-":
                if cur is not None:
                    cur.old[o] = text
                o, old_left = o + 1, old_left - 1
                continue
            if tag == "+":
                if cur is not None:
                    cur.new[n] = text
                n, new_left = n + 1, new_left - 1
                continue
            if tag == "\\":
                continue
            old_left = new_left = 0  # a short hunk: fall through to the headers
        if line.startswith("diff --git "):
            # "a/P b/P": one path twice (a rename's or a quoted name comes on later lines)
            rest = line[len("diff --git ") :]
            half = (len(rest) - 1) // 2
            same = len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]
            header = {"git": _strip_prefix(rest[half + 1 :]) if same else ""}
            cur = None
        elif line.startswith("rename to "):
            header["rename to"] = _unquote(line[len("rename to ") :])
            begin()
        elif line.startswith("--- "):
            old = line[4:]
            header["---"] = "" if old == "/dev/null" else _strip_prefix(old)
        elif line.startswith("+++ "):
            new = line[4:]
            header["+++"] = "" if new == "/dev/null" else _strip_prefix(new)
        elif m := _HUNK.match(line):
            cur = begin()
            o, n = int(m.group(1)), int(m.group(3))
            old_left = int(m.group(2)) if m.group(2) is not None else 1
            new_left = int(m.group(4)) if m.group(4) is not None else 1
        elif line.startswith(("Binary files ", "new mode", "new file mode", "deleted file")):
            begin()
    files.pop("", None)
    return files


def _ranges(nums: list[int]) -> str:
    """1, 2, 3, 7 -> "1-3, 7"."""
    out: list[str] = []
    for x in sorted(nums):
        if out and int(out[-1].rpartition("-")[2]) == x - 1:
            out[-1] = f"{out[-1].partition('-')[0]}-{x}"
        else:
            out.append(str(x))
    return ", ".join(out) or "none"


# -- the answer ------------------------------------------------------------------------------
def _json_in(text: str) -> Any:
    """The JSON value ``text`` is, or the last one in a ```json block, or the last object
    with a "comments" key in it; None when there is none."""
    s = text.strip()
    if not s:
        return None
    try:
        return json.loads(s)
    except ValueError:
        pass
    for block in reversed(re.findall(r"```(?:json)?[ \t]*\n(.*?)```", s, re.S)):
        try:
            return json.loads(block)
        except ValueError:
            continue
    dec, found, i = json.JSONDecoder(), None, s.find("{")
    while i >= 0:
        try:
            obj, end = dec.raw_decode(s, i)
        except ValueError:
            i = s.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "comments" in obj:
            found = obj  # the last one: an agent may quote the shape before its answer
        i = s.find("{", end)
    return found


def check_answer(texts: list[str], files: dict[str, FileLines]) -> tuple[list[dict[str, Any]], str]:
    """The comments of the first of ``texts`` that holds an answer, each checked against
    the diff's ``files``, and the answer's ``summary``; ReviewAnswerError naming every
    problem otherwise (then none of it counts)."""
    obj = next((x for x in map(_json_in, texts) if x is not None), None)
    hint = f"the reviewer must answer with one JSON object: {SHAPE}"
    if not isinstance(obj, dict) or not isinstance(obj.get("comments"), list):
        said = next((t.strip() for t in reversed(texts) if t.strip()), "")
        what = f": {said[:200]!r}" if said else " (it said nothing)"
        raise ReviewAnswerError(
            f"the reviewer's answer is not JSON of the form {{\"comments\": [...]}}{what}; "
            "nothing was stored",
            hint=hint,
        )
    items = obj["comments"]
    if len(items) > MAX_COMMENTS:
        raise ReviewAnswerError(
            f"the reviewer's answer has {len(items)} comments, more than {MAX_COMMENTS}; "
            "nothing was stored",
            hint=hint,
        )
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    for i, c in enumerate(items, 1):
        if not isinstance(c, dict):
            problems.append(f"comment {i} is not an object")
            continue
        path, line, side, body = c.get("path"), c.get("line"), c.get("side", "new"), c.get("body")
        if not isinstance(path, str) or not path:
            problems.append(f"comment {i} has no path")
            continue
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            problems.append(f"comment {i} ({path}) has no line number (a whole number ≥ 1)")
            continue
        if side not in ("new", "old"):
            problems.append(f"comment {i} ({path}:{line}) has side {side!r}, not new or old")
            continue
        if not isinstance(body, str) or not body.strip():
            problems.append(f"comment {i} ({path}:{line}) has no body")
            continue
        if len(body) > MAX_BODY:
            problems.append(f"comment {i} ({path}:{line}) is over {MAX_BODY} characters")
            continue
        f = files.get(path)
        if f is None:
            problems.append(
                f"comment {i}: {path!r} is not a file of the diff"
                f" (its files: {', '.join(sorted(files)[:10])})"
            )
            continue
        shown = f.new if side == "new" else f.old
        if line not in shown:
            problems.append(
                f"comment {i}: line {line} of {path} ({side} side) is not in the diff"
                f" (it shows lines {_ranges(list(shown))})"
            )
            continue
        code = shown[line].strip()
        code = code if len(code) <= 200 else code[:199] + "…"  # as the dashboard clips it
        out.append({"path": path, "line": line, "side": side, "code": code, "body": body.strip()})
    if problems:
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise ReviewAnswerError(
            f"the reviewer's answer was rejected, nothing was stored: {'; '.join(problems[:10])}"
            + more,
            hint="comments may point only at lines the diff shows (pa diff ID)",
        )
    summary = obj.get("summary")
    return out, summary.strip() if isinstance(summary, str) else ""


def answer_texts(store: Any, rs: Session) -> list[str]:
    """Where the reviewer's answer may be, best first: its last turn's result, its last
    message, all its plain output (the command agent's lines)."""
    turn = len(store.turns(rs.id))
    evs = [
        e
        for e in store.events(rs.id, kinds=["result", "message", "output"])
        if e.turn == turn
    ]

    def texts(kind: str) -> list[str]:
        return [str(e.payload.get("text") or "") for e in evs if e.kind == kind]

    output = "\n".join(texts("output"))
    return [*reversed(texts("result")), *reversed(texts("message")), output]


# -- prompts -------------------------------------------------------------------------------
def reviewer_prompt(first_prompt: str, patch: str, base: str, target: str) -> str:
    task = first_prompt.strip()
    task = task if len(task) <= 2000 else task[:2000] + "…"
    if len(patch) <= PROMPT_DIFF:
        shown = f"The diff:\n\n```diff\n{patch.rstrip()}\n```\n"
    else:
        shown = (
            f"The diff is large ({len(patch):,} characters): print it with\n"
            f"  git diff {base} {target}\n"
        )
    return (
        "You are reviewing another coding agent's changes. Read only: do not change any "
        "file.\n"
        f"The author was asked:\n> {task.replace(chr(10), chr(10) + '> ')}\n\n"
        f"Your working directory holds the repository as the author left it (commit "
        f"{target[:12]}); the author's changes are the diff from {base[:12]}.\n"
        f"{shown}\n"
        "Answer with ONE JSON object and nothing else, in this shape:\n"
        f"{SHAPE}\n"
        "- path: a file of the diff (its new name); line: a line number the diff shows on "
        'that side; side: "new" (the changed version, the default) or "old" (a removed '
        "line, by its number in the old version); body: your comment to the author: what is "
        "wrong and how to fix it.\n"
        f'- At most {MAX_COMMENTS} comments; {{"comments": []}} when there is nothing to '
        'say. You may add "summary": "one paragraph" beside "comments".\n'
    )


def review_prompt(comments: list[dict[str, Any]]) -> str:
    """The follow-up that carries ``comments`` to the author: the text the dashboard's
    "Send review comments" builds (web/static/js/diff.js ``reviewPrompt``)."""
    lines = ["Review comments on your changes:", ""]
    for i, c in enumerate(comments, 1):
        old = " (old version)" if c["side"] == "old" else ""
        lines.append(f"{i}. {c['path']} line {c['line']}{old}:")
        if c.get("code"):
            lines.append(f"   > {c['code']}")
        lines += [f"   {part}" for part in str(c["body"]).split("\n")]
        lines.append("")
    lines.append("Please address each comment.")
    return "\n".join(lines)


# -- the verbs -------------------------------------------------------------------------------
def _patch(app: Any, author: Session, base: str, target: str) -> str:
    from parallel_agents.git import diffs
    from parallel_agents.sessions.repos import require_repo

    return "".join(diffs.diff_stream(require_repo(app.store, author), base, target))


def start(
    app: Any,
    sid: str,
    *,
    agent: str | None = None,
    cmd: list[str] | None = None,
    model: str | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Session, Session]:
    """Start a reviewer agent on session ``sid``'s changes: (author, reviewer).

    The reviewer's worktree starts at a snapshot of the author's worktree (a commit on a
    hidden ref, made with a throwaway index: the author's files, index and HEAD stay as
    they are); its prompt holds the diff from the author's base to that snapshot.
    """
    from parallel_agents.sessions import review

    author = app.store.resolve_session(sid)
    if author.options.get("reviews"):
        raise UsageError(
            f"session {author.id} is a reviewer itself",
            hint=f"review the session it reviews: pa review {author.options['reviews']['session']}",
        )
    if author.status.active:
        raise Conflict(
            f"session {author.id} is {author.status.value}: its turn has not ended",
            hint=f"wait for it (pa wait {author.id}), then review it",
        )
    if author.status == Status.DISCARDED:
        raise Conflict(f"session {author.id} is discarded", hint=f"pa restore {author.id}")
    base, target, _ = review.diff_range(app.store, author, None)
    patch = _patch(app, author, base, target)
    if not patch.strip():
        raise UsageError(
            f"session {author.id} has not changed anything: there is nothing to review",
            hint=f"see its diff: pa diff {author.id}",
        )
    turns = app.store.turns(author.id)
    prompt = reviewer_prompt(turns[0].prompt if turns else author.title, patch, base, target)
    title = f"review of {author.id}: {author.title}"
    rs = app.new_session(
        prompt,
        repo=author.repo_name,
        agent=agent,
        cmd=cmd,
        model=model,
        base=target,
        title=title[:200],
        timeout=timeout or DEFAULT_TIMEOUT,
        env=env,
        options={"reviews": {"session": author.id, "base": base, "target": target}},
    )
    return author, rs


def _failure(rs: Session) -> str | None:
    """Why reviewer ``rs`` has no answer to read, or None when its turn ended well."""
    if rs.status == Status.IDLE:
        return None
    said = f": {rs.error}" if rs.error else ""
    if rs.error and rs.error.startswith("timed out"):
        return f"the reviewer agent {rs.id} {rs.error}"  # "timed out after N s and was …"
    if rs.status == Status.NEEDS_INPUT:
        return f"the reviewer agent {rs.id} asked for input instead of answering"
    return f"the reviewer agent {rs.id} did not finish ({rs.status.value}{said})"


def collect(app: Any, sid: str, rid: str) -> dict[str, Any]:
    """Read reviewer ``rid``'s answer on session ``sid``, check it against the diff it
    was given, store its comments (all or none), then discard the reviewer (archived).
    Collecting again gives the same outcome; a rejected answer raises ReviewAnswerError."""
    from parallel_agents.sessions.views import session_json

    author = app.store.resolve_session(sid)
    rs = app.store.resolve_session(rid)
    info = rs.options.get("reviews") or {}
    if info.get("session") != author.id:
        raise UsageError(f"session {rs.id} is not a reviewer of {author.id}")
    if rs.status in WORKING:
        raise Conflict(
            f"the reviewer agent {rs.id} is still {rs.status.value}",
            hint=f"wait for it: pa wait {rs.id}",
        )
    outcome = rs.options.get("review_outcome")
    if outcome is None:
        outcome = _read_answer(app, author, rs, info)
        opts = dict(app.store.session(rs.id).options)
        opts["review_outcome"] = outcome
        app.store.update_session(rs.id, options=opts)
    notes: list[str] = []
    rs = app.store.session(rs.id)
    if rs.status != Status.DISCARDED:
        try:
            rs, archive = app.discard(rs.id)
            notes.append(f"the reviewer's worktree is archived as {archive.get('ref')}")
        except PAError as e:  # the answer is read and kept: say so, do not lose it
            notes.append(f"the reviewer's worktree could not be discarded: {e.message}")
    if outcome.get("error"):
        raise ReviewAnswerError(str(outcome["error"]), hint=outcome.get("hint"))
    comments = [c for c in app.store.review_comments(author.id) if c.review_id == rs.id]
    return {
        "session": author.id,
        "review": session_json(rs),
        "comments": [c.to_json() for c in comments],
        "summary": outcome.get("summary", ""),
        "notes": notes,
    }


def _read_answer(app: Any, author: Session, rs: Session, info: dict[str, Any]) -> dict[str, Any]:
    """The outcome of reviewer ``rs``: its comments stored, or the error that rejected it."""
    why = _failure(rs)
    if why is not None:
        return {"error": f"{why}; no comments were stored", "hint": "run pa review again"}
    try:
        files = diff_lines(_patch(app, author, str(info["base"]), str(info["target"])))
        comments, summary = check_answer(answer_texts(app.store, rs), files)
    except PAError as e:
        return {"error": e.message, "hint": e.hint}
    author_name = f"{rs.agent} reviewer" + (f" ({rs.model})" if rs.model else "")
    app.store.add_review_comments(author.id, rs.id, author_name, comments)
    return {"comments": len(comments), "summary": summary}


def collect_pending(app: Any, sid: str) -> dict[str, Any]:
    """Collect every reviewer of ``sid`` whose answer was never read (the command that
    waited for it was stopped); what went wrong comes back as notes."""
    author = app.store.resolve_session(sid)
    notes: list[str] = []
    for rid in app.store.reviewer_sessions(author.id):
        rs = app.store.session(rid)
        if "review_outcome" in rs.options or rs.status == Status.DISCARDED:
            continue
        if rs.status in WORKING:
            notes.append(f"the reviewer agent {rid} is still working (pa wait {rid})")
            continue
        try:
            got = collect(app, author.id, rid)
            notes.append(f"collected {len(got['comments'])} comment(s) of reviewer {rid}")
        except PAError as e:
            notes.append(f"reviewer {rid}: {e.message}")
    return {"session": author.id, "notes": notes}


def comments(app: Any, sid: str, *, unsent: bool = False) -> dict[str, Any]:
    author = app.store.resolve_session(sid)
    rows = app.store.review_comments(author.id, unsent=unsent)
    return {"session": author.id, "comments": [c.to_json() for c in rows]}


def _chosen(app: Any, author: Session, only: list[int] | None) -> list[Any]:
    pending = app.store.review_comments(author.id, unsent=True)
    if only is None:
        chosen = pending
    else:
        have = {c.id for c in pending}
        missing = [i for i in only if i not in have]
        if missing:
            sent = {c.id for c in app.store.review_comments(author.id) if c.sent_at}
            was = [str(i) for i in missing if i in sent]
            unknown = [str(i) for i in missing if i not in sent]
            parts = ([f"already sent: {', '.join(was)}"] if was else []) + (
                [f"not comments of session {author.id}: {', '.join(unknown)}"] if unknown else []
            )
            raise UsageError(
                "; ".join(parts) + "; nothing was sent",
                hint=f"see the comments and their ids: pa review {author.id} --list",
            )
        chosen = [c for c in pending if c.id in set(only)]
    if not chosen:
        raise UsageError(
            f"session {author.id} has no unsent reviewer comments",
            hint=f"ask a reviewer agent first: pa review {author.id} --agent claude",
        )
    return list(chosen)


def send(app: Any, sid: str, only: list[int] | None = None) -> dict[str, Any]:
    """Send session ``sid``'s unsent reviewer comments (or those of ``only``) to its agent
    as ONE follow-up (the existing ``send`` verb: refused, marking nothing, while it works),
    then mark them sent."""
    from parallel_agents.sessions.views import session_json

    author = app.store.resolve_session(sid)
    chosen = _chosen(app, author, only)
    prompt = review_prompt([c.to_json() for c in chosen])
    s = app.send(author.id, prompt)
    turn = len(app.store.turns(s.id))
    ids = [c.id for c in chosen]
    app.store.mark_review_comments_sent(author.id, ids, turn)
    sent = [c.to_json() for c in app.store.review_comments(author.id) if c.id in set(ids)]
    return {"session": session_json(s), "sent": sent, "prompt": prompt}


def mark_sent(app: Any, sid: str, ids: list[int]) -> dict[str, Any]:
    """Mark comments sent that the dashboard sent itself, in its one follow-up with the
    person's own comments (diff.js)."""
    author = app.store.resolve_session(sid)
    turn = len(app.store.turns(author.id))
    n = app.store.mark_review_comments_sent(author.id, ids, turn)
    return {"session": author.id, "marked": n}

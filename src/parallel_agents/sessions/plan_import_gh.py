"""`pa plan import --gh-label LABEL` (issue 15 §1, import): a plan from GitHub issues,
read through the GitHub CLI (``gh``), so pa needs no token of its own.

Each open issue with the label is a task ``issue-N``: its title the title, title and
body the prompt. A line saying "depends on #N" (any case, several numbers on one line:
"Depends on #3, #4 and #7") makes it depend on ``issue-N``. What the plan cannot hold is
left out and said (``notes``), never guessed:

- an issue an open pull request already fixes ("Fixes #N", or GitHub's other closing
  words, in the PR's body) is left out: its work is under review already;
- a dependency on an issue that is not in the plan (not labelled, closed, or left out
  as above) is dropped: pa cannot wait for work outside the plan; the note names it so a
  person can check it is done.

It only reads: ``gh issue list`` and ``gh pr list``; the caller writes the plan file.
"""

from __future__ import annotations

import re
from typing import Any

from parallel_agents.errors import UsageError
from parallel_agents.git.gh import gh_json

LIMIT = 500  # issues and PRs read (gh's own default is 30: it would drop some silently)

_DEPENDS = re.compile(r"\bdepends[\s-]+on\b(.*)", re.IGNORECASE)
_REF = re.compile(r"(?<![\w/])#(\d+)\b")
# GitHub's closing keywords (docs: "Linking a pull request to an issue").
_FIXES = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#(\d+)\b", re.IGNORECASE
)
def _gh(exe: str | None, args: list[str]) -> Any:
    return gh_json(
        args, why="read the issues", exe=exe,
        fail_hint="outside the repo's folder: --repo OWNER/NAME",
    )


def depends_on(body: str) -> list[int]:
    """Issue numbers of the "depends on #N" lines of ``body``, in order, once each."""
    out: list[int] = []
    for line in body.splitlines():
        m = _DEPENDS.search(line)
        if m:
            out += [n for n in map(int, _REF.findall(m.group(1))) if n not in out]
    return out


def fixed_by(prs: list[dict[str, Any]]) -> dict[int, int]:
    """Issue number -> the open PR whose body says it fixes it."""
    out: dict[int, int] = {}
    for pr in prs:
        for n in _FIXES.findall(str(pr.get("body") or "")):
            out.setdefault(int(n), int(pr["number"]))
    return out


def gh_plan(
    label: str,
    *,
    repo: str | None = None,
    agent: str | None = None,
    auto_merge: bool = False,
    gh: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """(the plan's data, notes on what was left out) from the open issues labelled
    ``label`` of ``repo`` (OWNER/NAME; default: gh's, the repo around the folder)."""
    where = ["--repo", repo] if repo else []
    issues = _gh(
        gh,
        ["issue", "list", "--label", label, "--state", "open", "--limit", str(LIMIT),
         "--json", "number,title,body", *where],
    )
    in_repo = f" in {repo}" if repo else ""
    if not issues:
        raise UsageError(
            f"no open issues are labelled {label!r}{in_repo}: no plan to make",
            hint="see the labels: gh label list" + (f" --repo {repo}" if repo else ""),
        )
    prs = _gh(
        gh,
        ["pr", "list", "--state", "open", "--limit", str(LIMIT), "--json", "number,body", *where],
    )
    notes: list[str] = []
    if len(issues) >= LIMIT:
        notes.append(f"read the first {LIMIT} issues only: the plan may miss some")
    fixes = fixed_by(prs)
    numbers = {int(i["number"]) for i in issues}
    kept = sorted((i for i in issues if int(i["number"]) not in fixes), key=lambda i: i["number"])
    for n in sorted(numbers & set(fixes)):
        notes.append(f"issue #{n} left out: the open pull request #{fixes[n]} fixes it")
    ids = {int(i["number"]) for i in kept}
    tasks: list[dict[str, Any]] = []
    for i in kept:
        n, title, body = int(i["number"]), str(i["title"]).strip(), str(i.get("body") or "")
        t: dict[str, Any] = {"id": f"issue-{n}", "title": title or f"issue #{n}"}
        t["prompt"] = f"{title}\n\n{body.strip()}".strip() if body.strip() else t["title"]
        if agent:
            t["agent"] = agent
        deps = []
        for d in depends_on(body):
            if d in ids:
                deps.append(f"issue-{d}")
            elif d in fixes:
                notes.append(
                    f"issue-{n}: its dependency #{d} dropped: it is left out (the open pull "
                    f"request #{fixes[d]} fixes it); merge that first"
                )
            else:
                notes.append(
                    f"issue-{n}: its dependency #{d} dropped: it is not an open issue "
                    f"labelled {label!r}; check it is done"
                )
        if deps:
            t["depends_on"] = deps
        tasks.append(t)
    if not tasks:
        raise UsageError(
            f"every open issue labelled {label!r}{in_repo} has an open pull request that "
            "fixes it: no plan to make",
            hint="see them: gh pr list" + (f" --repo {repo}" if repo else ""),
        )
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"gh-{label}").strip("-.")[:64]
    doc: dict[str, Any] = {"name": name or "gh"}
    doc["description"] = f"the open GitHub issues labelled {label!r}{in_repo}"
    if auto_merge:
        doc["defaults"] = {"auto_merge": True}
    doc["tasks"] = tasks
    return doc, notes

"""Pairing mode (issue 16 §5): a main checkout left paired, or cut short mid-step.

A pairing record (``<PA_HOME>/pairing/<repo id>.json``) is the restore point of a main
checkout that shows a session's files. A live, in-sync pairing is reported for
information; one whose sync step was cut short (kill -9), that stopped syncing, or whose
session is gone is a problem `pa pair --stop ID` solves, and ``--repair`` runs that
stop when it would lose nothing (``pairing.blocker``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parallel_agents.errors import NotFound, PAError
from parallel_agents.models import Status
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def _check_pairings(app: App, rep: Report, repair: bool) -> None:
    from parallel_agents.sessions import pairing

    home = app.settings.home
    for rec in pairing.records(home):
        if rec.get("broken"):
            rep.add(
                Finding(
                    "pairing",
                    str(rec["record"]),
                    "an unreadable pairing record: the checkout's restore point is lost; "
                    "check the checkout with git status, then delete the file",
                )
            )
            continue
        sid = str(rec["sid"])
        trouble = None
        if rec.get("syncing_to"):
            trouble = "a sync step was cut short (kill -9?)"
        elif rec.get("diverged"):
            trouble = f"syncing stopped: {rec['diverged']}"
        else:
            try:
                s = app.store.session(sid)
                if s.status in (Status.DISCARDED, Status.MERGED):
                    trouble = f"its session is {s.status.value}"
            except NotFound:
                trouble = "its session no longer exists"
        back = rec.get("branch") or f"detached HEAD {str(rec['head'])[:12]}"
        subject = f"{rec['repo']} paired with {sid}"
        if trouble is None:
            rep.add(
                Finding(
                    "pairing",
                    subject,
                    f"shows session {sid}'s files; `pa pair --stop {sid}` puts it back on {back}",
                    problem=False,
                )
            )
            continue
        why = pairing.blocker(rec)
        detail = f"{trouble}; `pa pair --stop {sid}` puts the checkout back on {back}"
        if why is not None:
            detail += f" (it refuses now: {why.message}; {why.hint})"
        f = rep.add(
            Finding(
                "pairing",
                subject,
                detail,
                fix=None if why is not None else f"pa pair --stop {sid}",
            )
        )
        if repair and why is None:
            try:
                pairing.stop(home, sid)
                f.repaired = True
            except PAError as e:
                f.error = e.message

"""What `pa doctor` found: one ``Finding`` per problem (or note), gathered in a ``Report``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    repo: str | None = None
    fix: str | None = None  # what --repair does (or did)
    repaired: bool = False
    error: str | None = None  # the repair was tried and failed
    problem: bool = True  # False: for information only, never changed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    repair: bool = False

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.problems if not f.repaired]

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def add(self, f: Finding) -> Finding:
        self.findings.append(f)
        return f

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repair": self.repair,
            "problems": len(self.problems),
            "unresolved": len(self.unresolved),
            "findings": [f.to_json() for f in self.findings],
        }

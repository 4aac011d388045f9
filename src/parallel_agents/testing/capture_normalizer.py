"""Captured text made machine-independent: temp paths, ports, random ids, clocks and pids
become stable placeholders, so two recordings on different machines give the same files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

# Stable names that replace the machine's own.
WORK = "/tmp/example/work"

HOME = "/tmp/example/home"

PORT = "18081"

STAMP = "2026-01-01T00:00:00.000Z"

EPOCH_MS = "1767225600000"


class Normalizer:
    """Rewrites one agent's machine-specific details to stable placeholders.

    Ids are numbered in order of first appearance across all of the agent's files, so a
    session id that a resumed run repeats keeps the same placeholder in both files.
    """

    _UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
    _OPENCODE_ID = re.compile(r"\b(ses|msg|prt)_[0-9a-zA-Z]{20,}\b")
    _ISO = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b")
    _EPOCH_MS = re.compile(r"(?<![\d.])1[6-9]\d{11}(?![\d.])")
    _EPOCH_S = re.compile(r"(?<![\d.])1[6-9]\d{8}(\.\d+)?(?![\d.])")
    # Timings: duration_ms, ttft_ms, totalLatencyMs, ...
    _DURATION = re.compile(r'"(duration|\w+_ms|\w+Ms)":\s*\d+(\.\d+)?')
    _HTTP_DATE = re.compile(r"\b[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\b")
    # Claude's TUI spinner picks a random verb ("✻ Germinating…").
    _SPINNER = re.compile(r"^[✻✶✳✢·✽*] [A-Z][a-z]+…", re.MULTILINE)
    _SOCKET = re.compile(r"/tmp/cc-socks/\d+\.sock")

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []
        self.ids: dict[str, str] = {}

    def add_path(self, real: Path, placeholder: str) -> None:
        for variant in {str(real), str(real.resolve())}:
            self.paths.append((variant, placeholder))
            # Claude names its per-project folders after the path, every other char a dash.
            slug = re.sub(r"[^A-Za-z0-9]", "-", variant)
            self.paths.append((slug, re.sub(r"[^A-Za-z0-9]", "-", placeholder)))
        self.paths.sort(key=lambda p: -len(p[0]))

    def _id(self, kind: str, value: str, make: Callable[[int], str]) -> str:
        key = f"{kind}:{value}"
        if key not in self.ids:
            self.ids[key] = make(sum(1 for k in self.ids if k.startswith(f"{kind}:")) + 1)
        return self.ids[key]

    def __call__(self, text: str) -> str:
        for real, placeholder in self.paths:
            text = text.replace(real, placeholder)
        text = self._UUID.sub(
            lambda m: self._id("uuid", m[0], lambda n: f"00000000-0000-4000-8000-{n:012d}"), text
        )
        text = self._OPENCODE_ID.sub(
            lambda m: self._id(m[1], m[0], lambda n: f"{m[1]}_example{n:04d}"), text
        )
        text = self._ISO.sub(STAMP, text)
        text = self._EPOCH_MS.sub(EPOCH_MS, text)
        text = self._EPOCH_S.sub("1767225600", text)
        text = self._DURATION.sub(lambda m: f'"{m[1]}":0', text)
        text = self._HTTP_DATE.sub("Thu, 01 Jan 2026 00:00:00 GMT", text)
        text = self._SPINNER.sub("✻ Working…", text)
        return self._SOCKET.sub("/tmp/cc-socks/1000.sock", text)

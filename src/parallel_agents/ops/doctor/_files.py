"""Small file and path helpers the doctor's checks share."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def _read(p: Path) -> str | None:
    try:
        return p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _unlink(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        p.unlink()


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _age(p: Path) -> float:
    m = _mtime(p)
    return time.time() - m if m else 0.0


def _real(p: str) -> str:
    return os.path.realpath(p)


def _is_under(p: Path | None, root: Path) -> bool:
    if p is None:
        return False
    rp, rr = _real(str(p)), _real(str(root))
    return rp == rr or rp.startswith(rr + os.sep)

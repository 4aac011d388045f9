"""One-time login links: ``pa up`` prints and opens ``/login/once?code=C``.

A code is random, valid for ``TTL`` seconds and good for one use: the server trades
it for the ``pa_session`` cookie and deletes it, so a link left in a terminal's
scrollback or the browser's history logs nobody in later. Only a hash of each code
is stored, under ``$PA_HOME/login-codes/`` (mode 0700).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from pathlib import Path

DIR = "login-codes"
TTL = 600.0


def _dir(home: Path) -> Path:
    d = home / DIR
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _name(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _sweep(d: Path, now: float) -> None:
    for p in d.iterdir():
        with contextlib.suppress(OSError, ValueError):
            if float(p.read_text().strip() or 0) < now:
                p.unlink()


def issue(home: Path, ttl: float = TTL) -> str:
    """A fresh one-time code for this PA_HOME's server."""
    d = _dir(home)
    now = time.time()
    _sweep(d, now)
    code = secrets.token_urlsafe(24)
    fd = os.open(d / _name(code), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{now + ttl}\n")
    return code


def redeem(home: Path, code: str) -> bool:
    """True once for a valid, unexpired code; the code is gone afterwards."""
    if not code or len(code) > 200:
        return False
    path = home / DIR / _name(code)
    try:
        expires = float(path.read_text().strip() or 0)
        path.unlink()  # whoever unlinks first wins; a concurrent second use fails here
    except (OSError, ValueError):
        return False
    return expires >= time.time()

"""Issue 16 §1: each session's block of ports.

A session is given ``ports`` (the repo's ``.parallel-agents.toml``, default 10) ports of
``ports.range`` that no other session holds and that nothing on this machine listens on
when they are handed out (a bind test on 127.0.0.1). They are recorded in the store,
exported to the agent, the setup and the run script as ``PA_PORT`` (the first),
``PA_PORTS`` (all, comma-separated) and ``PORT``, and given back when the session is
discarded.
"""

from __future__ import annotations

import contextlib
import socket

from parallel_agents.config import Settings, port_range
from parallel_agents.errors import PAError
from parallel_agents.store import Store


def port_free(port: int) -> bool:
    """Nothing listens on ``port`` of 127.0.0.1 now (it can be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate(store: Store, settings: Settings, sid: str, count: int) -> list[int]:
    """Give session ``sid`` ``count`` free ports of ``ports.range``, recorded in one
    transaction (two sessions made at once never share one). Nothing is recorded when
    there are not enough: PAError."""
    if count <= 0:
        return []
    lo, hi = port_range(settings)
    with store.tx() as db:
        held = store.held_ports(db)
        got: list[int] = []
        for port in range(lo, hi + 1):
            if port not in held and port_free(port):
                got.append(port)
                if len(got) == count:
                    break
        if len(got) < count:
            raise PAError(
                f"no {count} free ports left in ports.range {lo}-{hi}: {len(held)} are held by"
                f" sessions, {len(got)} of the rest are free",
                hint="discard sessions you no longer need (their ports are given back), widen"
                " ports.range in your settings, or ask for fewer with ports = N in"
                " .parallel-agents.toml",
            )
        store.hold_ports(db, sid, got)
    return got


def release(store: Store, sid: str) -> int:
    """Give session ``sid``'s ports back (a discard); never fails the caller."""
    with contextlib.suppress(PAError):
        return store.release_ports(sid)
    return 0


def env_for(store: Store, sid: str) -> dict[str, str]:
    """``PA_PORT``, ``PA_PORTS`` and ``PORT`` of session ``sid`` ({} when it holds none)."""
    ports = store.session_ports(sid)
    if not ports:
        return {}
    first = str(ports[0])
    return {"PA_PORT": first, "PA_PORTS": ",".join(map(str, ports)), "PORT": first}

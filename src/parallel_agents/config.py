"""Settings: environment, the user's config file, the per-repo file, defaults.

Everything pa stores lives under one home directory (``PA_HOME``); user settings
live in ``$XDG_CONFIG_HOME/parallel-agents/config.toml`` (``PA_CONFIG`` overrides).
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_agents.errors import PAError, UsageError

APP = "parallel-agents"
REPO_FILE = ".parallel-agents.toml"
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Every documented setting with its default; `pa config` lists these and a test
# checks that each is documented in the README.
DEFAULTS: dict[str, Any] = {
    "worktree_root": "",  # empty: $PA_HOME/worktrees
    "default_agent": "command",
    "editor": "",  # `pa open` (issue 16 §3); empty: the first one found
    "limits": {
        "max_running": 8,  # agents running at once, all repos
        "per_repo": 0,  # 0: no per-repo limit
        "per_agent": {},  # e.g. {claude = 3}
        "max_attempts": 10,  # sessions one `pa new --attempts N` may start
        "max_map_items": 500,  # items one `pa map` may start
    },
    "timeout": 0,  # seconds per turn; 0: none
    "stop_grace": 5.0,  # seconds between interrupt, terminate and kill
    "notify": True,  # desktop notifications via notify-send when available
    "check": {"after_turn": False, "timeout": 600, "parallel": 2},
    "merge": {"strategy": "merge", "remove_worktree": False},
    "server": {"host": "127.0.0.1", "port": 7317, "autostart": True},
    "interactive": {"cols": 200, "rows": 50},  # tmux pane size of interactive sessions
    "pool": {  # warm worktree pool, on for the repos sessions were started in
        "size": 2,  # warm worktrees per repo at most; 0: off
        "max": 16,
        "background": True,
        "refill_every": 30,  # seconds between the server's pool checks; 0: none
        "disk_budget": "5%",  # of free space (bytes with a unit also); 0: no filling
        "min_free": "5GiB",  # the pool never leaves less free (or a % of the disk)
        "repos": {},
    },
    "output": {"max_bytes": 50_000_000},  # per turn: the head and tail kept beyond it
    "ports": {"range": "20000-29999"},  # where each session's block of ports is taken from
    # issue 17: the shortest `--every`, how often `--on-pr` asks gh (seconds), and the fires
    # of one routine's HTTP trigger a minute
    "routines": {"min_interval": 60, "pr_poll": 60, "fire_per_minute": 6},
    # issue 18: lead and child sessions (sessions/lineage.py): how deep a lead's sessions
    # may start sessions of their own, and how many live children one session may have; may
    # MCP callers merge and discard (allow_merge)
    "mcp": {"max_depth": 2, "max_children": 8, "allow_merge": False},
    # issue 19: where sessions run by default (local or ray) and the Ray cluster's address
    # (empty: RAY_ADDRESS, else a cluster started on this machine with `ray start --head`)
    "runtime": {"kind": "local", "ray": {"address": "", "repo_url": ""}},
    "agents": {},  # [agents.<name>] binary = "...", model = "...", ...
}
# The smallest output cap: a head and a tail of a few lines each.
MIN_OUTPUT_BYTES = 64 * 1024


def pa_home() -> Path:
    env = os.environ.get("PA_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / APP


def config_path() -> Path:
    env = os.environ.get("PA_CONFIG")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / APP / "config.toml"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass
class Settings:
    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    home: Path = field(default_factory=pa_home)

    @property
    def worktree_root(self) -> Path:
        root = str(self.data.get("worktree_root") or "")
        return Path(root).expanduser() if root else self.home / "worktrees"

    @property
    def default_agent(self) -> str:
        return str(self.data.get("default_agent") or "command")

    @property
    def editor(self) -> str | None:
        """``editor``: what `pa open` runs (a known name or a command); None: look."""
        value = self.data.get("editor") or ""
        if not isinstance(value, str):
            raise UsageError(
                f"editor must be a string (got {value!r})",
                hint=f'set it in {config_path()}, e.g. editor = "code"',
            )
        return value.strip() or None

    def limits(self) -> dict[str, Any]:
        return dict(self.data.get("limits") or {})

    def output_max_bytes(self) -> int:
        """``output.max_bytes``: what one turn's output may keep (its head and its tail)."""
        value = self.get("output.max_bytes")
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_OUTPUT_BYTES:
            raise UsageError(
                f"output.max_bytes must be a whole number of bytes, at least {MIN_OUTPUT_BYTES}"
                f" (got {value!r})",
                hint=f"set it in {config_path()}, e.g. [output] max_bytes = 50_000_000",
            )
        return value

    def runtime_kind(self) -> str:
        """``runtime.kind`` (issue 19): where sessions run unless ``pa new --runtime``."""
        value = self.get("runtime.kind") or "local"
        if value not in ("local", "ray"):
            raise UsageError(
                f"runtime.kind must be local or ray (got {value!r})",
                hint=f'set it in {config_path()}, e.g. [runtime] kind = "local"',
            )
        return str(value)

    def ray_address(self) -> str | None:
        """``runtime.ray.address`` (issue 19): the Ray cluster to run on; None: Ray's own
        default (``RAY_ADDRESS``, else the cluster started on this machine)."""
        value = self.get("runtime.ray.address") or ""
        if not isinstance(value, str):
            raise UsageError(
                f"runtime.ray.address must be a string (got {value!r})",
                hint=f'set it in {config_path()}, e.g. [runtime.ray] address = "10.0.0.5:6379"',
            )
        return value.strip() or None

    def ray_repo_url(self) -> str | None:
        """``runtime.ray.repo_url`` (issue 19): a git URL every node (and this machine)
        can fetch the repository from; the bundles then carry only what it lacks."""
        value = self.get("runtime.ray.repo_url") or ""
        if not isinstance(value, str):
            raise UsageError(
                f"runtime.ray.repo_url must be a string (got {value!r})",
                hint=f'set it in {config_path()}, e.g. [runtime.ray] repo_url ='
                ' "https://git.example.com/team/app.git"',
            )
        return value.strip() or None

    def agent_settings(self, name: str) -> dict[str, Any]:
        agents = self.data.get("agents") or {}
        return dict(agents.get(name) or {})

    def get(self, dotted: str) -> Any:
        cur: Any = self.data
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur


# -- disk sizes (pool.disk_budget, pool.min_free) -----------------------------------------
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}  # fmt: skip
POOL_BUDGET_ENV = "PA_POOL_DISK_BUDGET"


@dataclass(frozen=True)
class DiskSize:
    """A size in bytes, or a fraction of some other size (``"5%"``)."""

    bytes: int | None = None
    fraction: float | None = None

    def of(self, whole: int) -> int:
        """In bytes; a fraction is taken of ``whole``."""
        if self.fraction is not None:
            return int(whole * self.fraction)
        return self.bytes or 0

    @property
    def zero(self) -> bool:
        return not self.bytes and not self.fraction


def parse_size(value: Any, key: str, *, of: str) -> DiskSize:
    """``1234``, ``"500MB"``, ``"2GiB"``, ``"1.5G"`` or ``"5%"`` (of ``of``); UsageError else.

    KB/MB/GB/TB are powers of 1000; K/M/G/T and KiB/MiB/GiB/TiB powers of 1024.
    """
    hint = (
        f"write {key} as bytes with a unit (\"500MB\", \"2GiB\") or a percentage of"
        f" {of} (\"5%\"); 0 means none"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{key} = {value!r} is not a size", hint=hint)
    if isinstance(value, (int, float)):
        if value < 0:
            raise UsageError(f"{key} = {value!r} is negative", hint=hint)
        return DiskSize(bytes=int(value))
    text = value.strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise UsageError(f"{key} = {value!r} is not a percentage", hint=hint) from None
        if not 0 <= pct <= 100:
            raise UsageError(f"{key} = {value!r} is not between 0% and 100%", hint=hint)
        return DiskSize(fraction=pct / 100)
    m = _SIZE.fullmatch(text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        if text.startswith("-"):
            raise UsageError(f"{key} = {value!r} is negative", hint=hint)
        raise UsageError(f"{key} = {value!r} is not a size", hint=hint)
    return DiskSize(bytes=int(float(m.group(1)) * unit))


def pool_disk_budget(settings: Settings) -> DiskSize:
    """``pool.disk_budget`` (``PA_POOL_DISK_BUDGET`` overrides it): a fraction is of the
    space that would be free without the pool."""
    env = os.environ.get(POOL_BUDGET_ENV)
    if env is not None:
        return parse_size(env, POOL_BUDGET_ENV, of="free space")
    return parse_size(settings.get("pool.disk_budget"), "pool.disk_budget", of="free space")


def pool_min_free(settings: Settings) -> DiskSize:
    """``pool.min_free``: a fraction is of the whole filesystem."""
    return parse_size(settings.get("pool.min_free"), "pool.min_free", of="the disk's size")


def max_attempts(settings: Settings) -> int:
    """``limits.max_attempts``: the most sessions one `pa new --attempts N` may start."""
    value = settings.get("limits.max_attempts")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(
            f"limits.max_attempts must be a whole number, at least 1 (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [limits] max_attempts = 10",
        )
    return value


def port_range(settings: Settings) -> tuple[int, int]:
    """``ports.range`` (issue 16 §1): ``"LOW-HIGH"``, the ports sessions' blocks come from."""
    value = settings.get("ports.range")
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value) if isinstance(value, str) else None
    lo, hi = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if m is None or not 1024 <= lo <= hi <= 65535:
        raise UsageError(
            f"ports.range must be \"LOW-HIGH\" within 1024-65535 (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [ports] range = \"20000-29999\"",
        )
    return lo, hi


def routine_min_interval(settings: Settings) -> float:
    """``routines.min_interval`` (issue 17): the shortest ``--every`` a routine may have."""
    value = settings.get("routines.min_interval")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UsageError(
            f"routines.min_interval must be a number of seconds above 0 (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [routines] min_interval = 60",
        )
    return float(value)


def routine_pr_poll(settings: Settings) -> float:
    """``routines.pr_poll`` (issue 17): seconds between an ``--on-pr`` routine's looks."""
    value = settings.get("routines.pr_poll")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UsageError(
            f"routines.pr_poll must be a number of seconds above 0 (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [routines] pr_poll = 60",
        )
    return float(value)
def routine_fire_per_minute(settings: Settings) -> int:
    """``routines.fire_per_minute`` (issue 17): a routine's HTTP trigger starts at most this
    many runs a minute; more get 429."""
    value = settings.get("routines.fire_per_minute")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(
            f"routines.fire_per_minute must be a whole number of 1 or more (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [routines] fire_per_minute = 6",
        )
    return value


def mcp_allow_merge(settings: Settings) -> bool:
    """``mcp.allow_merge`` (issue 18): may an agent connected over MCP merge and discard?
    Off by default: a person merges."""
    value = settings.get("mcp.allow_merge")
    if not isinstance(value, bool):
        raise UsageError(
            f"mcp.allow_merge must be true or false (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [mcp] allow_merge = true",
        )
    return value


def mcp_cap(settings: Settings, name: str) -> int:
    """``mcp.max_depth`` / ``mcp.max_children`` (issue 18): caps on lead and child sessions."""
    value = settings.get(f"mcp.{name}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(
            f"mcp.{name} must be a whole number of 0 or more (got {value!r})",
            hint=f"set it in {config_path()}, e.g. [mcp] {name} = {DEFAULTS['mcp'][name]}",
        )
    return value


def _mcp_caps(settings: Settings) -> None:
    mcp_cap(settings, "max_depth")
    mcp_cap(settings, "max_children")


def _validate(settings: Settings, path: Path) -> None:
    """Refuse settings no command could work with, naming the file."""
    checks: tuple[Any, ...] = (
        pool_disk_budget, pool_min_free, max_attempts, port_range, routine_min_interval,
        routine_pr_poll,
        routine_fire_per_minute,
        _mcp_caps,
        mcp_allow_merge,
    )
    for check in checks:
        try:
            check(settings)
        except UsageError as e:
            if e.message.startswith(POOL_BUDGET_ENV):
                raise  # the environment's, not the file's
            raise UsageError(f"{path}: {e.message}", hint=e.hint) from None


def load_settings() -> Settings:
    path = config_path()
    # A deep copy: callers may adjust their settings without touching the defaults.
    data = copy.deepcopy(DEFAULTS)
    if path.exists():
        try:
            user = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read settings file {path}: {e}") from e
        except OSError as e:
            raise PAError(f"cannot read settings file {path}: {e}") from e
        data = _merge(data, user)
    # issue 19: `pa server start --runtime/--ray-address` hand these to the server it starts
    if os.environ.get("PA_RUNTIME"):
        data["runtime"]["kind"] = os.environ["PA_RUNTIME"]
    if os.environ.get("PA_RAY_ADDRESS"):
        data["runtime"]["ray"]["address"] = os.environ["PA_RAY_ADDRESS"]
    if os.environ.get("PA_RAY_REPO_URL"):
        data["runtime"]["ray"]["repo_url"] = os.environ["PA_RAY_REPO_URL"]
    settings = Settings(data=data, home=pa_home())
    settings.output_max_bytes()  # a bad value is refused by every command, not mid-turn
    settings.runtime_kind()
    settings.ray_address()
    settings.ray_repo_url()
    _validate(settings, path)
    return settings


@dataclass
class RepoConfig:
    """The optional ``.parallel-agents.toml`` at a repository's root."""

    setup: str | None = None
    copy: list[str] = field(default_factory=list)
    check: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Issue 16 §1: the run script (`pa run`), the archive script (before a discard
    # removes the worktree) and how many ports each session is given.
    run: str | None = None
    archive: str | None = None
    ports: int = 10


def load_repo_config(repo_path: Path) -> RepoConfig:
    path = repo_path / REPO_FILE
    if not path.exists():
        return RepoConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}", hint="fix the TOML syntax") from e
    unknown = set(raw) - {"setup", "copy", "check", "env", "run", "archive", "ports"}
    if unknown:
        raise UsageError(
            f"{path}: unknown keys {', '.join(sorted(unknown))}",
            hint="allowed keys: setup, copy, check, env, run, archive, ports",
        )
    for key in ("run", "archive"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise UsageError(f"{path}: {key!r} must be a string command")
    ports = raw.get("ports", 10)
    if isinstance(ports, bool) or not isinstance(ports, int) or not 0 <= ports <= 100:
        raise UsageError(
            f"{path}: 'ports' must be a whole number from 0 to 100 (got {ports!r})",
            hint="how many ports each session gets, e.g. ports = 10",
        )
    setup = raw.get("setup")
    check = raw.get("check")
    copy = raw.get("copy", [])
    env = raw.get("env", {})
    if setup is not None and not isinstance(setup, str):
        raise UsageError(f"{path}: 'setup' must be a string command")
    if check is not None and not isinstance(check, str):
        raise UsageError(f"{path}: 'check' must be a string command")
    if isinstance(copy, str):
        copy = [copy]
    if not isinstance(copy, list) or not all(isinstance(c, str) for c in copy):
        raise UsageError(f"{path}: 'copy' must be a list of glob strings")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise UsageError(f"{path}: 'env' must be a table of strings")
    for key, value in env.items():
        # Entries no process could be started with are refused here, not at the first turn.
        if not _ENV_KEY.fullmatch(key) or "\0" in value:
            raise UsageError(
                f"{path}: env entry {key!r} is not a valid environment variable",
                hint="names are letters, digits and '_' (not starting with a digit); "
                "values contain no NUL bytes",
            )
    return RepoConfig(
        setup=setup,
        copy=list(copy),
        check=check,
        env=dict(env),
        run=raw.get("run"),
        archive=raw.get("archive"),
        ports=ports,
    )

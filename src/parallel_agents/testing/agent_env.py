"""Environments that point each real agent CLI at a model API (usually the scripted server).

Every builder takes a private ``home`` directory, writes the CLI's config files under it and
returns the environment variables to add to a clean base environment (:func:`base_environ`),
so a run never reads or writes the real user's home, and parallel runs never share a config.

    env = {**base_environ(), **claude_env(home, base_url=server.url, api_key="s1", workdir=repo)}
    subprocess.run([claude, "-p", "hi", ...], cwd=repo, env=env, stdin=subprocess.DEVNULL)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "AGENT_NAMES",
    "DEFAULT_MODELS",
    "agent_env",
    "agents_prefix",
    "base_environ",
    "claude_env",
    "codex_env",
    "find_agent",
    "gemini_env",
    "mini_env",
    "opencode_env",
]

AGENT_NAMES = ("claude", "codex", "gemini", "opencode", "mini")

# Models each CLI knows offline (in its bundled catalogue), so none fetches metadata.
DEFAULT_MODELS = {
    "claude": "claude-sonnet-4-5",
    "codex": "gpt-5.5",
    "gemini": "gemini-2.5-pro",
    "opencode": "anthropic/claude-sonnet-4-5",
    "mini": "openai/gpt-4o",
}

OPENCODE_VERSION = "1.18.33"

# Variables that would point a CLI at real services or the real user's config.
_DROPPED_PREFIXES = (
    "ANTHROPIC_",
    "CLAUDE",
    "OPENAI_",
    "CODEX_",
    "GEMINI_",
    "GOOGLE_",
    "OPENCODE",
    "MSWEA_",
    "LITELLM_",
    "XDG_",
    "AWS_",
    "AZURE_",
    "VERTEX",
)
# PWD would override the child's real cwd for CLIs that trust it (OpenCode does).
_DROPPED_NAMES = frozenset({"PWD", "OLDPWD"})
_CODEX_KEY_VAR = "PA_MODEL_API_KEY"


def agents_prefix() -> Path:
    """Where scripts/install-agents.sh puts the CLIs: ``$PA_AGENTS_PREFIX`` or <repo>/.agents."""
    configured = os.environ.get("PA_AGENTS_PREFIX")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / ".agents"


def find_agent(name: str, prefix: Path | None = None) -> Path | None:
    """The installed executable for agent ``name``, or None when it is not installed."""
    path = (prefix or agents_prefix()) / "bin" / name
    return path if path.exists() and os.access(path, os.X_OK) else None


def base_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) without variables that leak real credentials/config."""
    source = os.environ if environ is None else environ
    return {
        k: v
        for k, v in source.items()
        if not k.upper().startswith(_DROPPED_PREFIXES) and k not in _DROPPED_NAMES
    }


def _home_env(home: Path, workdir: Path | None) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    dirs = {
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_CACHE_HOME": home / ".cache",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), **{k: str(v) for k, v in dirs.items()}}
    if workdir is not None:
        env["PWD"] = str(workdir)  # some CLIs (OpenCode) trust PWD over their real cwd
    return env


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def claude_env(
    home: Path, *, base_url: str, api_key: str, workdir: Path | None = None
) -> dict[str, str]:
    """Claude Code: ``ANTHROPIC_BASE_URL`` + key, onboarding/trust/key dialogs pre-answered."""
    env = _home_env(home, workdir)
    projects = {}
    if workdir is not None:
        projects[str(workdir.resolve())] = {
            "hasTrustDialogAccepted": True,
            "hasCompletedProjectOnboarding": True,
            "allowedTools": [],
        }
    _write_json(
        home / ".claude.json",
        {
            "hasCompletedOnboarding": True,
            "lastOnboardingVersion": "2.1.332",
            "bypassPermissionsModeAccepted": True,
            "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
            "projects": projects,
        },
    )
    (home / ".claude").mkdir(exist_ok=True)
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            # As root, bypassPermissions is refused unless the CLI is told it is sandboxed.
            "IS_SANDBOX": "1",
        }
    )
    return env


def codex_env(
    home: Path,
    *,
    base_url: str,
    api_key: str,
    workdir: Path | None = None,
    model: str = DEFAULT_MODELS["codex"],
    notify: list[str] | None = None,
    retries: int = 0,
) -> dict[str, str]:
    """Codex: a ``CODEX_HOME`` whose config.toml routes to ``base_url`` (Responses API)."""
    env = _home_env(home, workdir)
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    lines = [
        f"model = {json.dumps(model)}",
        'model_provider = "pa"',
        "check_for_update_on_startup = false",
    ]
    if notify:
        lines.append(f"notify = {json.dumps(notify)}")
    lines += [
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[model_providers.pa]",
        'name = "pa scripted model"',
        f"base_url = {json.dumps(base_url)}",
        f"env_key = {json.dumps(_CODEX_KEY_VAR)}",
        'wire_api = "responses"',
        f"request_max_retries = {retries}",
        f"stream_max_retries = {retries}",
    ]
    if workdir is not None:
        lines += ["", f"[projects.{json.dumps(str(workdir.resolve()))}]", 'trust_level = "trusted"']
    (codex_home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env.update({"CODEX_HOME": str(codex_home), _CODEX_KEY_VAR: api_key})
    return env


def gemini_env(
    home: Path, *, base_url: str, api_key: str, workdir: Path | None = None
) -> dict[str, str]:
    """Gemini CLI: ``GOOGLE_GEMINI_BASE_URL`` + key, API-key auth selected, folder trusted."""
    env = _home_env(home, workdir)
    _write_json(
        home / ".gemini" / "settings.json",
        {
            "security": {
                "auth": {"selectedType": "gemini-api-key"},
                "folderTrust": {"enabled": False},
            },
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
            "ui": {"hideTips": True, "hideBanner": True},
        },
    )
    if workdir is not None:
        _write_json(
            home / ".gemini" / "trustedFolders.json", {str(workdir.resolve()): "TRUST_FOLDER"}
        )
    env.update(
        {
            "GOOGLE_GEMINI_BASE_URL": base_url,
            "GEMINI_API_KEY": api_key,
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
            "GEMINI_CLI_NO_RELAUNCH": "true",
        }
    )
    return env


def opencode_env(
    home: Path,
    *,
    base_url: str,
    api_key: str,
    workdir: Path | None = None,
    model: str = DEFAULT_MODELS["opencode"],
) -> dict[str, str]:
    """OpenCode: inline config whose anthropic provider points at ``base_url``/v1."""
    env = _home_env(home, workdir)
    # OpenCode npm-installs @opencode-ai/plugin into each config dir at startup unless the
    # dir looks installed: node_modules present and every dependency in the lockfile root.
    config_dir = home / ".config" / "opencode"
    (config_dir / "node_modules").mkdir(parents=True, exist_ok=True)
    deps = {"@opencode-ai/plugin": OPENCODE_VERSION}
    _write_json(config_dir / "package.json", {"dependencies": deps})
    _write_json(config_dir / "package-lock.json", {"packages": {"": {"dependencies": deps}}})
    config = {
        "$schema": "https://opencode.ai/config.json",
        "model": model,
        "small_model": model,
        "autoupdate": False,
        "share": "disabled",
        "provider": {
            "anthropic": {"options": {"baseURL": f"{base_url.rstrip('/')}/v1", "apiKey": api_key}}
        },
    }
    env.update(
        {
            "OPENCODE_CONFIG_CONTENT": json.dumps(config),
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_DISABLE_SHARE": "1",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
            "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
            "ANTHROPIC_API_KEY": api_key,
        }
    )
    return env


def mini_env(
    home: Path,
    *,
    base_url: str,
    api_key: str,
    workdir: Path | None = None,
    model: str = DEFAULT_MODELS["mini"],
    retries: int = 0,
) -> dict[str, str]:
    """mini-swe-agent: litellm's OpenAI provider at ``base_url`` (with /v1), no setup wizard."""
    env = _home_env(home, workdir)
    config_dir = home / ".config" / "mini-swe-agent"
    config_dir.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "MSWEA_GLOBAL_CONFIG_DIR": str(config_dir),
            "MSWEA_SILENT_STARTUP": "1",
            "MSWEA_CONFIGURED": "true",
            "MSWEA_MODEL_NAME": model,
            "MSWEA_COST_TRACKING": "ignore_errors",
            "MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT": str(retries + 1),
            "OPENAI_API_KEY": api_key,
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_BASE": base_url,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
        }
    )
    return env


def agent_env(
    name: str, home: Path, *, server_url: str, api_key: str, workdir: Path | None = None
) -> dict[str, str]:
    """The environment for CLI ``name`` against a server at ``server_url`` (no path)."""
    root = server_url.rstrip("/")
    if name == "claude":
        return claude_env(home, base_url=root, api_key=api_key, workdir=workdir)
    if name == "codex":
        return codex_env(home, base_url=f"{root}/v1", api_key=api_key, workdir=workdir)
    if name == "gemini":
        return gemini_env(home, base_url=root, api_key=api_key, workdir=workdir)
    if name == "opencode":
        return opencode_env(home, base_url=root, api_key=api_key, workdir=workdir)
    if name == "mini":
        return mini_env(home, base_url=f"{root}/v1", api_key=api_key, workdir=workdir)
    raise ValueError(f"unknown agent {name!r}; known: {', '.join(AGENT_NAMES)}")

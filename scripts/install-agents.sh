#!/usr/bin/env bash
# Install the real agent CLIs that the e2e tests and `pa demo` drive, at pinned versions, into a
# project-local prefix (default <repo>/.agents, override with PA_AGENTS_PREFIX).
#
#   scripts/install-agents.sh            install what is missing or at the wrong version
#   scripts/install-agents.sh --check    only report; exit 1 if anything is missing
#   scripts/install-agents.sh mini ...   only these agents (also with --check); names:
#                                        claude codex gemini opencode mini claude-oldest codex-oldest
#
# Everything comes from the package registries (npm, PyPI); nothing else is downloaded.
# The result is <prefix>/bin/{claude,codex,gemini,opencode,mini}, plus claude-oldest and
# codex-oldest (the oldest supported releases). Idempotent: a tool already
# installed at its pinned version is left alone. Needs node >= 20 with npm, and python >= 3.11.
set -euo pipefail

CLAUDE_VERSION=2.1.332    # npm @anthropic-ai/claude-code (same build as claude-agent-sdk 0.2.189)
CODEX_VERSION=0.171.0     # npm @openai/codex
GEMINI_VERSION=0.61.0     # npm @google/gemini-cli
OPENCODE_VERSION=1.18.33  # npm opencode-ai
MINI_VERSION=2.4.6        # PyPI mini-swe-agent
# The oldest releases pa supports (ClaudeAgent/CodexAgent.supported_versions), installed
# side by side as claude-oldest and codex-oldest so the e2e tests run both ends of the range.
CLAUDE_OLDEST_VERSION=2.1.197
CODEX_OLDEST_VERSION=0.95.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${PA_AGENTS_PREFIX:-$repo/.agents}
all_agents=(claude codex gemini opencode mini claude-oldest codex-oldest)
check_only=0
only=()
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    claude | codex | gemini | opencode | mini | claude-oldest | codex-oldest) only+=("$arg") ;;
    *) echo "usage: $0 [--check] [${all_agents[*]}]..." >&2; exit 2 ;;
  esac
done
# No names: every agent. `pa demo` needs only the one it runs (mini by default).
((${#only[@]})) || only=("${all_agents[@]}")
wanted() { [[ " ${only[*]} " == *" $1 "* ]]; }

log() { printf 'install-agents: %s\n' "$*"; }
die() { printf 'install-agents: error: %s\n' "$*" >&2; exit 1; }

find_python() {
  local candidate
  for candidate in "${PA_AGENTS_PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [[ -n $candidate ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    die "node and npm not found (node >= 20 with npm is required)"
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "node $(node -v) is too old: the agent CLIs need node >= 20"
}

make_venv() {
  local python=$1 venv=$2
  "$python" -m venv "$venv" >&2 && return 0
  # Debian splits venv/ensurepip into its own package.
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "python venv support missing: installing Debian's python3-venv"
    rm -rf "$venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2; }
    "$python" -m venv "$venv" >&2 && return 0
  fi
  die "cannot create a venv with $python (install python3-venv)"
}

mkdir -p "$prefix/bin" "$prefix/npm" "$prefix/venvs"
# The prefix ignores itself, so it never shows up in `git status` wherever it lives.
[[ -f $prefix/.gitignore ]] || printf '*\n' >"$prefix/.gitignore"

missing=0
installed=()
kept=()

# npm_tool NAME PACKAGE VERSION BIN_IN_NODE_MODULES
npm_tool() {
  local name=$1 package=$2 version=$3 bin=$4
  wanted "$name" || return 0
  local dir=$prefix/npm/$name
  local manifest=$dir/node_modules/$package/package.json
  local have=""
  if [[ -f $manifest ]]; then
    have=$(node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true)
  fi
  if [[ $have == "$version" && -x $dir/node_modules/.bin/$bin ]]; then
    kept+=("$name $version")
  elif ((check_only)); then
    log "$name: missing (have '${have:-nothing}', want $version)"
    missing=1
    return 0
  else
    need_node
    log "$name: installing $package@$version${have:+ (replacing $have)}"
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '{"name":"pa-agent-%s","private":true}\n' "$name" >"$dir/package.json"
    # Postinstall scripts run the binaries (OpenCode's runs `opencode --version`, which
    # writes XDG dirs): keep that out of the real home.
    local scratch=$prefix/.install-home
    mkdir -p "$scratch"
    XDG_CONFIG_HOME=$scratch/config XDG_DATA_HOME=$scratch/data XDG_STATE_HOME=$scratch/state \
      XDG_CACHE_HOME=$scratch/cache \
      npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error \
      "$package@$version" >&2
    rm -rf "$scratch"
    [[ -x $dir/node_modules/.bin/$bin ]] || die "$name: npm finished but $bin is missing"
    installed+=("$name $version")
  fi
  ln -sfn "../npm/$name/node_modules/.bin/$bin" "$prefix/bin/$name"
}

mini_tool() {
  wanted mini || return 0
  local venv=$prefix/venvs/mini have=""
  if [[ -x $venv/bin/python ]]; then
    have=$("$venv/bin/python" -c \
      'import importlib.metadata as m; print(m.version("mini-swe-agent"))' 2>/dev/null || true)
  fi
  if [[ $have == "$MINI_VERSION" && -x $venv/bin/mini ]]; then
    kept+=("mini $MINI_VERSION")
  elif ((check_only)); then
    log "mini: missing (have '${have:-nothing}', want $MINI_VERSION)"
    missing=1
    return 0
  else
    local python
    python=$(find_python) || die "python >= 3.11 not found (set PA_AGENTS_PYTHON)"
    log "mini: installing mini-swe-agent==$MINI_VERSION into its own venv (${python})"
    rm -rf "$venv"
    make_venv "$python" "$venv"
    # -qq: this machine's pip config names extra indexes that may not exist; keep errors only.
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check \
      "mini-swe-agent==$MINI_VERSION" >&2
    [[ -x $venv/bin/mini ]] || die "mini: pip finished but bin/mini is missing"
    installed+=("mini $MINI_VERSION")
  fi
  ln -sfn "../venvs/mini/bin/mini" "$prefix/bin/mini"
}

started=$SECONDS
npm_tool claude @anthropic-ai/claude-code "$CLAUDE_VERSION" claude
npm_tool codex @openai/codex "$CODEX_VERSION" codex
npm_tool gemini @google/gemini-cli "$GEMINI_VERSION" gemini
npm_tool opencode opencode-ai "$OPENCODE_VERSION" opencode
npm_tool claude-oldest @anthropic-ai/claude-code "$CLAUDE_OLDEST_VERSION" claude
npm_tool codex-oldest @openai/codex "$CODEX_OLDEST_VERSION" codex
mini_tool

if ((check_only)); then
  ((missing)) && exit 1
  log "all agents present in $prefix/bin: ${only[*]}"
  exit 0
fi

for item in "${kept[@]}"; do log "already installed: $item"; done
for item in "${installed[@]}"; do log "installed: $item"; done
log "agents in $prefix/bin ($((SECONDS - started))s):"
for name in "${only[@]}"; do
  printf '  %-13s -> %s\n' "$name" "$(readlink "$prefix/bin/$name")"
done

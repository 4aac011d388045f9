#!/usr/bin/env bash
# Regenerate the dashboard screenshots in docs/img/ from the browser tests' artifacts.
#
#   scripts/screenshots.sh          # run the browser tests, then copy their screenshots
#   scripts/screenshots.sh --copy   # only copy what test-artifacts/browser/ already holds
#
# The browser tests (tests/browser/, Playwright + /usr/bin/chromium) save sidebar.png,
# session.png, diff.png, panes.png, conflicts.png, terminal.png, shell.png, review-agent.png,
# attempts.png, map.png, plan.png, sidebar-groups.png, run.png, new-from.png, routines.png and
# lead.png
# there as they go.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SRC=test-artifacts/browser
DEST=docs/img

if [ "${1:-}" != "--copy" ]; then
  [ -f src/parallel_agents/web/static/vendor/versions.json ] || scripts/build-web.sh
  rm -f "$SRC"/*.png
  "$PY" -m pytest tests/browser -m browser -q -p no:cacheprovider
fi

mkdir -p "$DEST"
copied=0
for name in sidebar session diff panes conflicts terminal shell review-agent attempts map plan sidebar-groups run new-from routines lead; do
  if [ -f "$SRC/$name.png" ]; then
    cp "$SRC/$name.png" "$DEST/dashboard-$name.png"
    echo "docs/img/dashboard-$name.png"
    copied=$((copied + 1))
  else
    echo "missing $SRC/$name.png (its test was skipped?)" >&2
  fi
done
[ "$copied" -gt 0 ] || { echo "no screenshots found in $SRC" >&2; exit 1; }

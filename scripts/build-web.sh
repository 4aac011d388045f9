#!/usr/bin/env bash
# Build the dashboard's third-party assets: install the pinned npm packages from
# package-lock.json and copy the files the browser needs into the package's
# static/vendor/ folder (gitignored; shipped in wheels and sdists as hatch "artifacts").
# `pip install` / `python -m build` run it through hatch_build.py when the files are
# missing or do not match package-lock.json.
#
#   scripts/build-web.sh            # npm ci + copy
#   SKIP_NPM=1 scripts/build-web.sh # copy only (node_modules already there)
#   PA_BUILD_WEB_NO_APT=1 ...       # never apt-get install npm (package builds)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NM=$ROOT/node_modules
OUT=$ROOT/src/parallel_agents/web/static/vendor

if [ "${SKIP_NPM:-0}" != "1" ] && [ -L node_modules ]; then
  # npm ci empties node_modules through the link, i.e. the checkout it is shared with.
  echo "node_modules is a symbolic link: copying from it without npm ci" >&2
  SKIP_NPM=1
fi
if [ "${SKIP_NPM:-0}" != "1" ]; then
  if ! command -v npm >/dev/null; then
    if [ "${PA_BUILD_WEB_NO_APT:-0}" != "1" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== installing Debian's nodejs + npm for the dashboard's assets"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "error: npm is needed to build the dashboard's assets (apt-get install npm)" >&2
      exit 1
    fi
  fi
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi

rm -rf "$OUT"
mkdir -p "$OUT"
copy() {  # copy SRC (relative to node_modules) to DEST (relative to vendor/)
  mkdir -p "$(dirname "$OUT/$2")"
  cp "$NM/$1" "$OUT/$2"
}
copy @xterm/xterm/lib/xterm.mjs xterm/xterm.mjs
copy @xterm/xterm/css/xterm.css xterm/xterm.css
copy @xterm/xterm/LICENSE xterm/LICENSE
copy @xterm/addon-fit/lib/addon-fit.mjs xterm/addon-fit.mjs
copy @xterm/addon-fit/LICENSE xterm/LICENSE.addon-fit
copy diff2html/bundles/js/diff2html-ui-slim.min.js diff2html/diff2html-ui-slim.min.js
copy diff2html/bundles/css/diff2html.min.css diff2html/diff2html.min.css
copy diff2html/LICENSE.md diff2html/LICENSE.md
copy marked/lib/marked.esm.js marked/marked.esm.js
copy marked/LICENSE marked/LICENSE
copy dompurify/dist/purify.es.mjs dompurify/purify.es.mjs
copy dompurify/LICENSE dompurify/LICENSE
# Source maps point at files we do not ship; drop the comment so browsers do not 404 on them.
find "$OUT" -name '*.mjs' -o -name '*.js' | while read -r f; do
  sed -i.orig '/^\/\/# sourceMappingURL=/d' "$f" && rm -f "$f.orig"  # GNU and BSD sed
done
node -e '
const fs = require("fs");
const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
const out = {};
for (const [k, v] of Object.entries(lock.packages || {})) {
  if (k.startsWith("node_modules/") && !k.slice(13).includes("node_modules/")) out[k.slice(13)] = v.version;
}
fs.writeFileSync(process.argv[1], JSON.stringify(out, null, 2) + "\n");
' "$OUT/versions.json"
echo "vendor assets in ${OUT#"$ROOT"/}:"
(cd "$OUT" && find . -type f | sort | sed 's/^\.\//  /')

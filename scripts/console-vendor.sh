#!/usr/bin/env bash
# The console's vendored front-end files are exactly what `npm ci` installs from the pinned lockfile
# (src/console/web/vendor/package-lock.json): reinstall in target/console-vendor and compare byte for byte.
# `--update` copies the installed files over the vendored ones (after changing the pin in package.json and running
# `npm install --package-lock-only` there).
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=src/console/web/vendor
work=target/console-vendor
rm -rf "$work" && mkdir -p "$work"
cp "$vendor/package.json" "$vendor/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
status=0
for pair in "uPlot.iife.min.js:node_modules/uplot/dist/uPlot.iife.min.js" \
            "uPlot.min.css:node_modules/uplot/dist/uPlot.min.css" \
            "LICENSE:node_modules/uplot/LICENSE"; do
  ours="$vendor/${pair%%:*}"; theirs="$work/${pair#*:}"
  if [ "${1:-}" = "--update" ]; then cp "$theirs" "$ours"; continue; fi
  if ! cmp -s "$ours" "$theirs"; then
    echo "console-vendor: $ours differs from the locked package's ${pair#*:} (run scripts/console-vendor.sh --update)"
    status=1
  fi
done
[ "$status" = 0 ] && echo "console-vendor: vendored files match $(node -e "console.log(require('./$work/node_modules/uplot/package.json').version)" 2>/dev/null || echo '?') from the lockfile"
exit "$status"

#!/usr/bin/env bash
# Moves a store written before the ledger slot (docs/CLUSTER.md "Migration") to the current key names, on one
# Redis node, with every gateway stopped: each money key `sg:<rest>` becomes `{sg}:<rest>` (RENAMENX: a key that
# already exists under the new name is reported, never overwritten); the day's report keys also lose their own
# day tag (`sg:report:{<day>}:entries` -> `{sg}:report:<day>:entries`).
# Usage: scripts/migrate-ledger-keys.sh redis://127.0.0.1:6379
set -euo pipefail
url=${1:?usage: $0 <redis-url>}
moved=0 kept=0
while IFS= read -r key; do
  case "$key" in
    sg:stats:*) continue ;; # per-minute figures, gone within two hours anyway
  esac
  new="{sg}:${key#sg:}"
  case "$key" in
    # the day's report keys had the day as their own tag: sg:report:{<day>}:consumed -> {sg}:report:<day>:consumed
    sg:report:\{*\}:*) day=${key#sg:report:\{}; rest=${day#*\}:}; new="{sg}:report:${day%%\}*}:${rest}" ;;
  esac
  if [ "$(redis-cli -u "$url" RENAMENX "$key" "$new")" = "1" ]; then moved=$((moved + 1)); else
    echo "kept $key: $new exists" >&2; kept=$((kept + 1)); fi
done < <(redis-cli -u "$url" --scan --pattern 'sg:*')
echo "moved $moved keys, kept $kept"

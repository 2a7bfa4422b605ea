#!/usr/bin/env bash
# Time and peak memory of the cardholder sync (`settlegate cardholders import`, src/sync) at the district's scale.
#
#   scripts/import-bench.sh [CARDS]        (default 1000000; SKIP_BUILD=1 to use the release binary as it is)
#
# Generates CARDS cardholders as NDJSON and as CSV (with street and community), starts a private redis-server
# (free port, never 6379), and runs the release binary under /usr/bin/time -v:
#   1. the NDJSON import into an empty store;
#   2. the CSV import into an empty store (FLUSHALL between);
#   3. a dry run of the night's file (every card but 1 in 100) with --suspend-missing: counts, changes nothing;
#   4. the night's file with --suspend-missing: the import pass again, then the suspend pass (1 % suspended).
# Prints, per run, the wall time, the peak RSS (Maximum resident set size) and the command's summary line; the
# suspend pass alone is the difference of runs 4 and 1 (same import), and its own progress line is printed.
# Environment: BENCH_OUT (target/import-bench), SETTLEGATE_BIN, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

CARDS=${1:-1000000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-$TARGET/import-bench}
WORK=$OUT/work
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$TARGET/release/settlegate}

trap lt_cleanup EXIT
trap 'exit 130' INT TERM
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (Debian package time)" >&2; exit 2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  lt_log "building settlegate (release)"
  cargo build --release -q --locked -p settlegate --bin settlegate
fi
[ -x "$SETTLEGATE_BIN" ] || { echo "missing $SETTLEGATE_BIN" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
lt_log "generating $CARDS cardholders (NDJSON, CSV, and the night's NDJSON without 1 card in 100)"
python3 - "$CARDS" "$WORK" <<'PY'
import sys
n, work = int(sys.argv[1]), sys.argv[2]
streets = ["jinrongjie", "yuetan", "zhanlanlu", "desheng", "xichang", "guanganmen", "tianqiao", "baizhifang"]
cats = ["dibao", "tekun", "low_income", "illness_poverty"]
with open(f"{work}/cards.ndjson", "w") as nd, open(f"{work}/cards.csv", "w") as csv, \
        open(f"{work}/night.ndjson", "w") as night:
    csv.write("card_id,category,valid_from,valid_until,status,tags,street,community\n")
    for i in range(n):
        cid, cat, st = f"C{i:08d}", cats[i % 4], streets[i % 8]
        com = f"{st}-{i % 13:02d}"
        tags = '["elderly_80"]' if i % 10 == 0 else "[]"
        line = (f'{{"card_id":"{cid}","category":"{cat}","valid_from":"2026-01-01","valid_until":"2026-12-31",'
                f'"status":"active","tags":{tags},"street":"{st}","community":"{com}"}}\n')
        nd.write(line)
        if i % 100 != 99:
            night.write(line)
        csv.write(f"{cid},{cat},2026-01-01,2026-12-31,active,{'elderly_80' if i % 10 == 0 else ''},{st},{com}\n")
PY
ls -l "$WORK"/cards.ndjson "$WORK"/cards.csv "$WORK"/night.ndjson >&2

lt_start_redis "$WORK/redis"
lt_log "redis on $REDIS_PORT (pid $REDIS_PID)"
cat >"$WORK/gateway.toml" <<TOML
listen = "127.0.0.1:1"
[tls]
cert = "unused"
key = "unused"
client_ca = "unused"
[admin]
identities = ["relief-office"]
[redis]
url = "$REDIS_URL"
TOML

# run NAME ARGS...: one timed run; prints its wall time, peak RSS and summary.
run() {
  local name=$1; shift
  /usr/bin/time -v -o "$WORK/$name.time" "$SETTLEGATE_BIN" cardholders import "$@" --config "$WORK/gateway.toml" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || { cat "$WORK/$name.err" >&2; exit 1; }
  local wall rss
  wall=$(sed -n 's/^\s*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/$name.time")
  rss=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$WORK/$name.time")
  printf '%-22s wall %-8s peak RSS %6d MiB   %s\n' "$name" "$wall" $((rss / 1024)) "$(cat "$WORK/$name.out")"
  grep -E '^(import: done|suspend)' "$WORK/$name.err" | tail -2 | sed 's/^/    /'
}

echo "settlegate cardholders import, $CARDS cards, redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
run ndjson "$WORK/cards.ndjson"
echo "    redis used_memory: $(redis-cli -p "$REDIS_PORT" info memory | sed -n 's/^used_memory_human://p' | tr -d '\r')"
redis-cli -p "$REDIS_PORT" flushall >/dev/null
run csv "$WORK/cards.csv"
run dry-run-suspend "$WORK/night.ndjson" --dry-run --suspend-missing
run suspend-missing "$WORK/night.ndjson" --suspend-missing
for id in C00000098 C00000099; do
  echo "    $id: $(redis-cli -p "$REDIS_PORT" hget "{sg}:{$id}:card" status) (C00000099 is missing from the night's file)"
done

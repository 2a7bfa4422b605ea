#!/usr/bin/env bash
# Capacity: bytes per key kind, per settlement and per cardholder, measured on a private redis-server.
# For each of two hash encodings (Redis's default hash-max-listpack-value 64, then 1024 with
# hash-max-listpack-entries 128) it starts its own redis-server (free port, never 6379, no persistence,
# noeviction, a temp dir) and the release gateway against it, imports CAP_CARDS cardholders, sends CAP_SETTLEMENTS
# settlements over mTLS (curl, one keep-alive connection per hospital, 4 hospitals; insurance refs on 60 %,
# operators on 70 %, as the load tester's smoke scenario), waits for the report aggregator, then measures
# `MEMORY USAGE <key> SAMPLES 0` over up to CAP_SAMPLE keys of each kind of docs/REDIS_KEYS.md and INFO memory's
# used_memory before and after. Everything it starts is stopped on exit. docs/CAPACITY.md has a run and its use.
#
# Usage: scripts/capacity.sh   (env: CAP_CARDS=2000 CAP_SETTLEMENTS=5000 CAP_SAMPLE=1000 SETTLEGATE_BIN=…)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# lt_start_redis, lt_make_certs, lt_start_gateway, lt_cleanup (stops exactly the pids started here)
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

CARDS=${CAP_CARDS:-2000}
SETTLEMENTS=${CAP_SETTLEMENTS:-5000}
SAMPLE=${CAP_SAMPLE:-1000}
BIN=${SETTLEGATE_BIN:-$ROOT/target/release/settlegate}
export -n SETTLEGATE_BIN            # the gateway reads SETTLEGATE_* as config keys
export LT_SERVER_THREADS=1          # one gateway worker thread: this box is small and shared
HOSPITALS=(H0001 H0002 H0003 H0004)
[ -x "$BIN" ] || { echo "missing $BIN (build it first)" >&2; exit 2; }

# Private temp dir; on exit stop our redis-server and gateway, then remove it.
WORK=$(mktemp -d /tmp/settlegate-capacity.XXXXXX)
trap 'lt_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# --- sample data (deterministic: the same cards and bills for both passes) ---------------------------------
RANDOM=20261202
cats=(dibao tekun low_income dibao_edge illness_poverty)
streets=(jinrongjie yuetan xinjiekou zhanlan)
names=("王丽" "李强" "张伟" "陈静")
# Cardholders as RULES.md NDJSON: ids C100001…, five categories, one in five tagged elderly_80, a street and community.
for ((i = 1; i <= CARDS; i++)); do
  tags='[]'; ((i % 5 == 0)) && tags='["elderly_80"]'
  s=${streets[i % 4]}
  printf '{"card_id":"C%d","category":"%s","valid_from":"2026-01-01","valid_until":"2026-12-31","status":"active","tags":%s,"street":"%s","community":"%s-%02d"}\n' \
    $((100000 + i)) "${cats[i % 5]}" "$tags" "$s" "$s" $((i % 12 + 1))
done >"$WORK/cards.ndjson"

# Settle bodies, round robin over the hospitals (one file of JSON lines each): a random card, visit date in 2026,
# outpatient / chronic / inpatient bills, buckets adding up to the total, insurance ≤ in-scope, like docs/API.md.
for ((i = 1; i <= SETTLEMENTS; i++)); do
  h=${HOSPITALS[i % 4]}
  hsid=$(printf '%s-2026%02d%02d-%06d' "$h" $((1 + RANDOM % 11)) $((1 + RANDOM % 28)) "$i")
  date=${hsid:6:4}-${hsid:10:2}-${hsid:12:2}
  r=$((RANDOM % 10))
  if ((r < 6)); then vt=outpatient total=$((2000 + RANDOM * 2)); crit=0
  elif ((r < 7)); then vt=chronic total=$((20000 + RANDOM * 6)); crit=0
  else vt=inpatient total=$((300000 + (RANDOM * 32768 + RANDOM) % 2700000)); crit=1; fi
  ins=$((total * 80 / 100 + RANDOM % 100)) pre=$((total * 3 / 100)) over=$((total * 2 / 100))
  self=$((total - ins - pre - over))
  basic=$((ins * 60 / 100)) ci=$((crit * ins * 5 / 100))
  ref=''; ((RANDOM % 100 < 60)) && ref=",\"settlement_ref\":\"IR.$hsid\""
  op=''
  if ((RANDOM % 100 < 70)); then
    op=",\"operator\":{\"id\":\"cashier-$h-$((1 + RANDOM % 8))\""
    ((RANDOM % 2)) && op+=",\"name\":\"${names[RANDOM % 4]}\""
    op+='}'
  fi
  printf '{"hospital_settlement_id":"%s","card_id":"C%d","visit":{"type":"%s","date":"%s"},"amounts":{"total_fen":%d,"in_scope_fen":%d,"pre_self_pay_fen":%d,"over_limit_fen":%d,"self_pay_fen":%d},"insurance":{"basic_fen":%d,"critical_illness_fen":%d,"other_fen":0%s}%s}\n' \
    "$hsid" $((100001 + RANDOM % CARDS)) "$vt" "$date" "$total" "$ins" "$pre" "$over" "$self" "$basic" "$ci" "$ref" "$op" \
    >>"$WORK/bodies-$h.ndjson"
done

# Dev certificates: CA, server, the relief office and the four hospitals.
lt_make_certs "$BIN" "$WORK/certs" relief-office "${HOSPITALS[@]}"

# --- helpers --------------------------------------------------------------------------------------------------
rc() { redis-cli -p "$REDIS_PORT" "$@"; }
info() { rc info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }
sum() { awk '{ s += $1 } END { printf "%d\n", s }'; }
count() { rc --scan --pattern "$1" | wc -l; }
# sample PATTERN [COUNT-CMD]: up to SAMPLE keys of PATTERN; prints "keys bytes elements" (elements = keys, or the
# sum of COUNT-CMD over them, e.g. LLEN).
sample() {
  local keys bytes elems
  mapfile -t keys < <(rc --scan --pattern "$1" | head -n "$SAMPLE")
  ((${#keys[@]})) || { echo "0 0 0"; return; }
  bytes=$(printf 'MEMORY USAGE %s SAMPLES 0\n' "${keys[@]}" | rc | sum)
  if [ -n "${2:-}" ]; then elems=$(printf "$2 %s\n" "${keys[@]}" | rc | sum); else elems=${#keys[@]}; fi
  echo "${#keys[@]} $bytes $elems"
}
# row NAME "keys bytes elements" UNIT PER-SETTLEMENT: one table line; adds its bytes per settlement to STL_SUM.
row() {
  local name=$1 unit=$3 per=$4 k b e
  read -r k b e <<<"$2"
  awk -v n="$name" -v k="$k" -v b="$b" -v e="$e" -v u="$unit" -v p="$per" 'BEGIN {
    bu = e ? b / e : 0; s = (p == "-") ? "-" : sprintf("%.0f", bu * p)
    printf "%-36s %6d %9.0f %9.1f %-18s %6s %8s\n", n, k, k ? b / k : 0, bu, u, p, s }'
  [ "$per" = - ] || ((e == 0)) || STL_SUM=$(awk -v a="$STL_SUM" -v b="$b" -v e="$e" -v p="$per" 'BEGIN { print a + b / e * p }')
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# --- one pass: LABEL [redis-server args…] ------------------------------------------------------------------------
measure() {
  local label=$1; shift
  local dir="$WORK/$label"
  # 1. Private Redis (lt_start_redis: free port, --save "" --appendonly no --maxmemory-policy noeviction) + gateway.
  lt_start_redis "$dir/redis" "$@"
  lt_start_gateway "$BIN" "$dir/gateway" "$WORK/certs" "$REDIS_URL"
  local cfg="$dir/gateway/gateway.toml"
  # 2. The example ruleset (constant, before the baseline), then the baseline figures.
  "$BIN" rules publish config/rules.example.toml --config "$cfg" >/dev/null
  local m0 m1 m2 ev1 xl1 ev2 xl2
  m0=$(info memory used_memory)
  # 3. Cardholders, straight into Redis (the nightly sync's path: audited batches of 500).
  "$BIN" cardholders import "$WORK/cards.ndjson" --config "$cfg" >/dev/null 2>&1
  m1=$(info memory used_memory)
  # The gateway polls for rulesets (redis.rules_refresh_ms): wait until an eligibility answer names version 1.
  local q='{"card_id":"C100001","visit":{"type":"outpatient","date":"2026-06-01"}}'
  for _ in $(seq 1 100); do
    curl -s --cacert "$WORK/certs/ca.pem" --cert "$WORK/certs/H0001.pem" --key "$WORK/certs/H0001.key" \
      -H 'Content-Type: application/json' -d "$q" "$GW_URL/v1/eligibility" | grep -q '"ruleset_version":1' && break
    sleep 0.1
  done
  ev1=$(rc memory usage '{sg}:events' samples 0); xl1=$(rc xlen '{sg}:events')
  # 4. Settlements over mTLS: one curl per hospital, every request on its keep-alive connection, in turn.
  rc config resetstat >/dev/null
  local gw0 rs0 h codes ok=0
  gw0=$(cpu_ticks "$GW_PID"); rs0=$(info cpu used_cpu_user)+$(info cpu used_cpu_sys)
  for h in "${HOSPITALS[@]}"; do
    awk -v u="$GW_URL/v1/settlements" -v c="$WORK/certs" -v h="$h" '{
      if (NR > 1) print "next"
      printf "url = \"%s\"\ncacert = \"%s/ca.pem\"\ncert = \"%s/%s.pem\"\nkey = \"%s/%s.key\"\n", u, c, c, h, c, h
      print "header = \"Content-Type: application/json\"\nsilent\noutput = \"/dev/null\"\nwrite-out = \"%{http_code}\\n\""
      print "data = " $0 }' "$WORK/bodies-$h.ndjson" >"$dir/curl-$h.cfg"
    codes=$(curl -K "$dir/curl-$h.cfg" || true)
    ok=$((ok + $(grep -c '^201$' <<<"$codes" || true)))
    grep -v '^201$' <<<"$codes" | sort | uniq -c | sed "s/^/  $h non-201: /" >&2 || true
  done
  local gw_us rs_us
  gw_us=$(awk -v a="$gw0" -v b="$(cpu_ticks "$GW_PID")" -v t="$(getconf CLK_TCK)" -v n="$ok" 'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }')
  rs_us=$(awk -v a="$rs0" -v b="$(info cpu used_cpu_user)+$(info cpu used_cpu_sys)" -v n="$ok" \
    'BEGIN { split(a, x, "+"); split(b, y, "+"); printf "%.1f", (y[1] + y[2] - x[1] - x[2]) * 1e6 / n }')
  local evalsha; evalsha=$(info commandstats cmdstat_evalsha)
  ((ok == SETTLEMENTS)) || { echo "only $ok of $SETTLEMENTS settlements answered 201" >&2; exit 1; }
  # 5. Wait (≤ 30 s) until the report aggregator has consumed every day line into the day's entries.
  local lines consumed
  lines=$(sample '{sg}:recon:*:*:events' LLEN | awk '{ print $3 }')
  for _ in $(seq 1 300); do
    consumed=$(rc --scan --pattern '{sg}:report:*:consumed' | while read -r k; do rc hvals "$k"; done | sum)
    ((consumed >= lines)) && break
    sleep 0.1
  done
  ((consumed >= lines)) || echo "warning: report entries hold $consumed of $lines lines" >&2
  m2=$(info memory used_memory)
  local split; split=$(rc info memory | tr -d '\r' | grep -E '^used_memory_(overhead|dataset|rss):' | tr '\n' ' ')
  ev2=$(rc memory usage '{sg}:events' samples 0); xl2=$(rc xlen '{sg}:events')
  # 6. The table: bytes per key kind (sampled), per unit, and per settlement.
  local nstl nref nusage enc
  nstl=$(count '{sg}:{*}:stl:*'); nref=$(count '{sg}:ref:{*}'); nusage=$(count '{sg}:{*}:usage')
  enc=$(rc object encoding "$(rc --scan --pattern '{sg}:{*}:stl:*' | head -n 1)")
  echo
  echo "== $label: redis-server ${*:-(defaults)}; settlement record encoding: $enc"
  echo "   $CARDS cards, $ok settlements ($nstl records, $nref refs, $nusage usage hashes), $lines day lines"
  printf '%-36s %6s %9s %9s %-18s %6s %8s\n' "kind (key)" keys B/key B/unit unit "n/stl" B/stl
  STL_SUM=0
  row "card hash {sg}:{C}:card" "$(sample '{sg}:{*}:card')" card -
  row "usage hash {sg}:{C}:usage" "$(sample '{sg}:{*}:usage')" "card and year" -
  row "settlement record {sg}:{C}:stl:H/id" "$(sample '{sg}:{*}:stl:*')" settlement 1
  row "claim {sg}:claim:{H/id}" "$(sample '{sg}:claim:{*}')" settlement 1
  row "ref {sg}:ref:{ref}" "$(sample '{sg}:ref:{*}')" "ref" "$(awk -v a="$nref" -v b="$ok" 'BEGIN { printf "%.2f", a / b }')"
  row "recon day line (list/LLEN)" "$(sample '{sg}:recon:*:*:events' LLEN)" "line" 1
  row "history member (list/LLEN)" "$(sample '{sg}:{*}:hist:*' LLEN)" "member" 1
  row "event ({sg}:events delta/XLEN)" "1 $((ev2 - ev1)) $((xl2 - xl1))" "event" \
    "$(awk -v a=$((xl2 - xl1)) -v b="$ok" 'BEGIN { printf "%.2f", a / b }')"
  # (MEMORY USAGE of the entries string includes APPEND's spare allocation; STRLEN / lines is the payload)
  local data; data=$(sample '{sg}:report:*:entries' STRLEN | awk -v l="$lines" '{ printf "%.1f", $3 / l }')
  row "report entry (entries/lines)" "$(sample '{sg}:report:*:entries' | awk -v l="$lines" '{ print $1, $2, l }')" \
    "line ($data B data)" 1
  printf '%-36s %63.0f\n' "sum of the keys, per settlement" "$STL_SUM"
  # Every key's MEMORY USAGE, and the part in keys that are neither a card's nor a settlement's (fixed ones).
  local all other
  all=$(rc --scan | sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' | rc | sum)
  other=$(rc --scan | grep -Ev '^\{sg\}:(\{[^}]*\}:(card|usage|stl:.*|hist:.*)|claim:\{.*\}|ref:\{.*\}|recon:.*:events|events|report:.*:entries)$' |
    sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' | rc | sum)
  echo "all $(rc dbsize) keys: $all B of MEMORY USAGE, of which $other B in fixed keys (rulesets, audit, labels, stats, …)"
  awk -v a="$m0" -v b="$m1" -v c="$m2" -v n="$CARDS" -v s="$ok" 'BEGIN {
    printf "used_memory: %d before cards, %d after cards, %d after settlements\n", a, b, c
    printf "used_memory per cardholder (import delta): %.0f B\n", (b - a) / n
    printf "used_memory per settlement (settle delta, incl. usage hashes, history lists): %.0f B\n", (c - b) / s }'
  echo "after settlements: $split"
  echo "CPU at this load (sequential requests, one connection per hospital): gateway $gw_us µs/settle," \
    "Redis $rs_us µs/settle; EVALSHA ${evalsha}"
  # 7. Stop this pass's gateway and Redis (the next pass starts fresh ones).
  lt_cleanup
}

echo "settlegate capacity run, $(date -u +%FT%TZ), $(redis-server --version | cut -d' ' -f1-3)"
measure default
measure listpack --hash-max-listpack-value 1024 --hash-max-listpack-entries 128

#!/usr/bin/env bash
# Overload run: the settle path at 1.5 x its saturation against one gateway with a small max_in_flight, to show
# load shedding (fast 503s, admitted requests still fast) and that the money audit holds; then the gateway's whole
# log (level info) is searched for every card id of the run.
#
#   scripts/overload.sh [MAX_IN_FLIGHT]      (default 64; SKIP_BUILD=1 to use the release binaries as they are)
#
# Writes target/loadtest/overload/{saturation,overload}/report.json and prints a summary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

OUT=${OVERLOAD_OUT:-$ROOT/target/loadtest/overload}
WORK="$OUT/work"
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$ROOT/target/release/settlegate}
LOADTEST_BIN=${LOADTEST_BIN:-$ROOT/target/release/settlegate-loadtest}
MAX_IN_FLIGHT=${1:-64}

trap lt_cleanup EXIT
trap 'exit 130' INT TERM
lt_build_bins "$SETTLEGATE_BIN" "$LOADTEST_BIN"

rm -rf "$WORK"
mkdir -p "$WORK"
lt_start_redis "$WORK/redis"
lt_make_certs "$SETTLEGATE_BIN" "$WORK/certs" relief-office H0001 H0002 H0003 H0004
export SETTLEGATE_LIMITS_MAX_IN_FLIGHT=$MAX_IN_FLIGHT SETTLEGATE_LOG_LEVEL=info LT_SERVER_THREADS=1
lt_start_gateway "$SETTLEGATE_BIN" "$WORK/gateway" "$WORK/certs" "$REDIS_URL"
lt_log "gateway on $GW_URL (pid $GW_PID), max_in_flight $MAX_IN_FLIGHT"

run() {
  local out=$1
  shift
  timeout --signal=INT --kill-after=10 300 "$LOADTEST_BIN" run --scenario "$ROOT/loadtest/scenarios/settle_only.toml" \
    --target "$GW_URL" --certs "$WORK/certs" --out "$out" --slo-max-error-rate 1 --slo-p99-ms 1000 "$@" || true
}
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# 1. saturation: closed model, enough in flight to keep the gateway busy but under max_in_flight
run "$OUT/saturation" --concurrency "$((MAX_IN_FLIGHT / 2))" --duration 8 --no-audit
sat=$(field "$OUT/saturation/report.json" "r['achieved_rps']")
rate=$(python3 -c "print(round(1.5 * $sat))")
lt_log "saturation ${sat}/s; offering ${rate}/s (1.5 x) in the open model"

# 2. 1.5 x saturation, open model, with the money audit
run "$OUT/overload" --rate "$rate" --duration 10 --max-in-flight 20000 --no-prewarm
report="$OUT/overload/report.json"
field "$report" "'requests %d, achieved %.0f/s, errors_by_code %s' % (r['requests'], r['achieved_rps'], r['errors_by_code'])"
field "$report" "'latency ms (all answers) p50 %.2f p99 %.2f max %.2f' % (r['latency_ms']['p50'], r['latency_ms']['p99'], r['latency_ms']['max'])"
field "$report" "'audit: %s' % ('PASS' if r['audit'].get('passed') else 'FAIL')"
curl -fsS "http://127.0.0.1:$OPS_PORT/metrics" >"$OUT/metrics.txt" || true
grep -E '^settlegate_http_shed_total' "$OUT/metrics.txt" || true

# 3. no full card id in the gateway's log: card ids of the run are <prefix>-<7 digits> (hsids end in 8 digits)
log="$WORK/gateway/gateway.log"
lines=$(wc -l <"$log")
hits=$(grep -cE '[A-Za-z0-9]-[0-9]{7}([^0-9]|$)' "$log" || true)
lt_log "gateway log: $lines lines, $hits with a card id"
[ "$hits" = 0 ]

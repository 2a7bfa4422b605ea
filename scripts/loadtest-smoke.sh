#!/usr/bin/env bash
# Smoke load test: a private redis-server (free port, no persistence), the gateway's release binary, dev
# certificates, then loadtest/scenarios/smoke.toml (every operation, insurance refs and operators, the relief
# office's contributions, ~12 s of load, then the money audit, the event stream audit, the audit trail's hash chain
# and, when served, the reconciliation check).
# Writes target/loadtest/smoke/{report.json,report.html,summary.txt} and exits with the tester's verdict
# (0 pass, 1 SLO or audit failed, 2 could not run). Extra arguments go to `settlegate-loadtest run`
# (e.g. --tamper to prove the audit catches a fault, --tamper-audit for the audit trail, --duration 5).
#
# Environment: SETTLEGATE_BIN, LOADTEST_BIN (default ${CARGO_TARGET_DIR:-target}/release/…), SKIP_BUILD=1 to use
# them as they are, SMOKE_OUT (default target/loadtest/smoke). loadtest/tests/smoke.rs runs this script in
# `cargo test` with the debug binaries and a short --duration.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

OUT=${SMOKE_OUT:-$ROOT/target/loadtest/smoke}
WORK="$OUT/work"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$TARGET_DIR/release/settlegate}
LOADTEST_BIN=${LOADTEST_BIN:-$TARGET_DIR/release/settlegate-loadtest}
# The gateway reads every SETTLEGATE_* environment variable as a config key: SETTLEGATE_BIN given in the
# environment must not reach it ("unknown field `bin`").
export -n SETTLEGATE_BIN

trap lt_cleanup EXIT
trap 'exit 130' INT TERM

lt_build_bins "$SETTLEGATE_BIN" "$LOADTEST_BIN"

rm -rf "$WORK"
mkdir -p "$WORK"
lt_start_redis "$WORK/redis"
lt_log "redis-server on port $REDIS_PORT (pid $REDIS_PID)"
lt_make_certs "$SETTLEGATE_BIN" "$WORK/certs" relief-office H0001 H0002
lt_start_gateway "$SETTLEGATE_BIN" "$WORK/gateway" "$WORK/certs" "$REDIS_URL"
lt_log "gateway on $GW_URL (pid $GW_PID, ops $OPS_PORT)"

set +e
timeout --signal=INT --kill-after=10 120 "$LOADTEST_BIN" run \
  --scenario "$ROOT/loadtest/scenarios/smoke.toml" \
  --target "$GW_URL" --certs "$WORK/certs" --out "$OUT" \
  --redis-url "$REDIS_URL" --watch-pid "gateway=$GW_PID" --watch-pid "redis=$REDIS_PID" \
  "$@"
verdict=$?
set -e
if ! kill -0 "$GW_PID" 2>/dev/null; then
  echo "the gateway died during the run; see $WORK/gateway/gateway.log" >&2
  verdict=1
fi
lt_log "verdict: exit $verdict; reports in $OUT"
exit "$verdict"

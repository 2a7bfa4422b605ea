#!/usr/bin/env bash
# Contract test: schemathesis generates requests from docs/openapi.yaml (examples, boundary values, random valid
# and invalid data, undeclared methods) and checks every answer of the real gateway against the document: status
# codes, content types, headers, response schemas, "valid data is accepted", "invalid data is refused".
#
# Starts a private redis-server (free port, never 6379) and `settlegate serve` (debug build) with dev certificates,
# seeds a ruleset and cardholders through the admin API (curl, mTLS), then runs `st run` once per role: the
# hospital paths with certificate H0001, the relief-office paths with certificate relief-office, the ops paths over
# plain HTTP. Every check is enabled; each run is bounded (examples per operation and wall time). Exits non-zero
# on any failure. Every process it starts is stopped on exit.
#
# schemathesis is installed from PyPI into a venv under target/ (python3; python3-venv via apt-get when missing).
# Environment: ST_MAX_EXAMPLES (examples per operation, 100), ST_TIMEOUT (seconds per run, 300), ST_SEED (fixed
# by default, so CI is repeatable; "random" for a new one), ST_VERSION (the schemathesis version), SETTLEGATE_BIN,
# SKIP_BUILD=1 (use SETTLEGATE_BIN as it is), ST_OUT (target/schemathesis: venv, logs, JUnit reports).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${ST_OUT:-$TARGET/schemathesis}
VENV=$OUT/venv
ST_VERSION=${ST_VERSION:-4.32.5}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-100}
RUN_TIMEOUT=${ST_TIMEOUT:-300}
SEED=${ST_SEED:-20261201}
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$TARGET/debug/settlegate}
WORK=$OUT/work

trap lt_cleanup EXIT
trap 'exit 130' INT TERM

# ---- schemathesis in a venv ----------------------------------------------------------------------------------
missing=()
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  lt_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  timeout 300 apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! "$VENV/bin/st" --version 2>/dev/null | grep -qF "version $ST_VERSION"; then
  lt_log "installing schemathesis $ST_VERSION into $VENV"
  rm -rf "$VENV"
  mkdir -p "$OUT"
  timeout 120 python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/pip" install --disable-pip-version-check -q "schemathesis==$ST_VERSION"
fi
"$VENV/bin/st" --version

# ---- the gateway ---------------------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  lt_log "building settlegate (debug)"
  cargo build -q --locked -p settlegate --bin settlegate
fi
[ -x "$SETTLEGATE_BIN" ] || { echo "missing $SETTLEGATE_BIN" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
lt_start_redis "$WORK/redis"
lt_log "redis-server on port $REDIS_PORT (pid $REDIS_PID)"
CERTS=$WORK/certs
lt_make_certs "$SETTLEGATE_BIN" "$CERTS" relief-office H0001
lt_start_gateway "$SETTLEGATE_BIN" "$WORK/gateway" "$CERTS" "$REDIS_URL"
lt_log "gateway on $GW_URL (pid $GW_PID, ops $OPS_PORT)"

# ---- seed: the document's example ruleset and cards ---------------------------------------------------------
admin_curl() {
  curl -sS --fail-with-body --max-time 10 --cacert "$CERTS/ca.pem" \
    --cert "$CERTS/relief-office.pem" --key "$CERTS/relief-office.key" "$@"
}
# In force for every date the document allows, so a valid visit of a seeded card is never 422 for want of rules;
# every program has a pool, so a contribution to a program the document's examples name is never 422 `not_a_pool`
# (a refusal by the stored rules, tested in tests/http_pools.rs).
admin_curl -o /dev/null -H 'content-type: application/json' -X POST "$GW_URL/admin/v1/rulesets" --data-binary @- <<'JSON'
{"effective_from": "0001-01-01", "programs": [
  {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"], "annual_pool_fen": 9000000000000,
   "categories": {"tekun": {"ratio_bp": 10000, "annual_cap_fen": 15000000},
                  "dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}}},
  {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
   "annual_pool_fen": 50000000,
   "categories": {"tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000},
                  "dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}}}]}
JSON
admin_curl -o /dev/null -H 'content-type: application/x-ndjson' -X POST "$GW_URL/admin/v1/cardholders/import" \
  --data-binary @- <<'NDJSON'
{"card_id":"C100001","category":"dibao","valid_from":"0001-01-01","valid_until":"9999-12-31","status":"active","tags":["elderly_80"]}
{"card_id":"C100002","category":"tekun","valid_from":"0001-01-01","valid_until":"9999-12-31","status":"active"}
NDJSON
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$OPS_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$OPS_PORT/readyz"

# ---- the runs ------------------------------------------------------------------------------------------------
[ "$SEED" = random ] && SEED=$RANDOM$RANDOM
lt_log "schemathesis: seed $SEED, at most $MAX_EXAMPLES examples per operation, ${RUN_TIMEOUT}s per run"
failed=()
export SCHEMATHESIS_HOOKS=$ROOT/scripts/schemathesis_hooks.py ST_CACHE_DIR=$OUT/cache
# st_run NAME URL PATH_REGEX [st options...]. Network-level failures are retried: the gateway closes a keep-alive
# connection idle for `limits.header_read_timeout_ms`, and a request sent at that very moment meets a closed socket.
st_run() {
  local name=$1 url=$2 regex=$3; shift 3
  lt_log "schemathesis run: $name ($regex)"
  local status=0
  timeout --signal=INT --kill-after=20 "$RUN_TIMEOUT" "$VENV/bin/st" --no-color \
    --config-file "$ROOT/scripts/schemathesis.toml" run "$ROOT/docs/openapi.yaml" \
    --url "$url" --include-path-regex "$regex" --checks all --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
    --generation-database none --request-retries 2 --report junit --report-junit-path "$OUT/$name.junit.xml" "$@" \
    2>&1 | tee "$OUT/$name.log" || status=$?
  [ "$status" = 0 ] || failed+=("$name (exit $status)")
}
st_run hospital "$GW_URL" '^/v1/' --tls-verify "$CERTS/ca.pem" \
  --request-cert "$CERTS/H0001.pem" --request-cert-key "$CERTS/H0001.key"
st_run relief-office "$GW_URL" '^/admin/' --tls-verify "$CERTS/ca.pem" \
  --request-cert "$CERTS/relief-office.pem" --request-cert-key "$CERTS/relief-office.key"
st_run ops "http://127.0.0.1:$OPS_PORT" '^/(healthz|readyz|metrics)$'

if ! kill -0 "$GW_PID" 2>/dev/null; then
  failed+=("the gateway died; see $WORK/gateway/gateway.log")
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf 'schemathesis: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
lt_log "schemathesis: every run passed (logs and JUnit reports in $OUT)"

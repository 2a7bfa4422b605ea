#!/usr/bin/env bash
# Profiles the settle path (issue 13): where Redis spends its time inside one settle script, and how many
# instructions Redis and the gateway spend per settlement.
#   scripts/profile-settle.sh perf       # closed-model saturation for 12 s; INFO commandstats of the commands the
#                                        # script calls, and `perf record` of redis-server and the gateway for 5 s of it
#   scripts/profile-settle.sh callgrind  # redis-server, then the gateway, under `valgrind --tool=callgrind`:
#                                        # after a warm-up, runs of 500 and 1 500 settles at 100/s; Ir per settle
#                                        # = the difference of their counts / the difference of their settles
#   scripts/profile-settle.sh floors     # the same count for redis-server behind the benchmark's floor servers:
#                                        # `evalsha` (one INCR script) and `ledger` (a settlement's reads and writes)
#   scripts/profile-settle.sh steps      # the settle script cut after each of its steps (scripts/settle_steps.py):
#                                        # calls captured from the gateway (MONITOR) replayed as new settlements into
#                                        # redis-server under callgrind; instructions per call after each step
# Uses the release binaries (SKIP_BUILD=1 to use them as they are) and private processes on free ports only; writes
# under target/profile/. Instruction counts do not move between runs on this noisy machine; times do.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"
trap lt_cleanup EXIT
MODE=${1:-perf}
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$ROOT/target/release/settlegate}
LOADTEST_BIN=${LOADTEST_BIN:-$ROOT/target/release/settlegate-loadtest}
export -n SETTLEGATE_BIN # the gateway reads SETTLEGATE_* as config keys ("unknown field `bin`")
lt_build_bins "$SETTLEGATE_BIN" "$LOADTEST_BIN"
OUT=${PROFILE_OUT:-$ROOT/target/profile}/$MODE
rm -rf "$OUT"; mkdir -p "$OUT"
# one runtime thread, as in scripts/bench.sh; valgrind is slow: give Redis calls time
export LT_SERVER_THREADS=1 SETTLEGATE_REDIS_RESPONSE_TIMEOUT_MS=20000
lt_make_certs "$SETTLEGATE_BIN" "$OUT/certs" relief-office H0001 H0002 H0003 H0004
# the settle-only scenario on 1 000 cards (seeding 100 000 under valgrind would take long)
sed 's/^count = 100000/count = 1000/' loadtest/scenarios/settle_only.toml >"$OUT/scenario.toml"
run_load() { # NAME ARGS...
  local name=$1; shift
  "$LOADTEST_BIN" run --scenario "$OUT/scenario.toml" --certs "$OUT/certs" --target "$GW_URL" --no-audit \
    --out "$OUT/$name" "$@" ${RUN_FLOOR:+--floor} >"$OUT/$name.log" 2>&1 || true
}
settles_of() { grep -o 'completed [0-9]*' "$OUT/$1/summary.txt" | awk '{print $2}'; }
total_ir() { callgrind_annotate "$1" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",", "", $1); print $1}'; }

# Each loadtest run seeds its own 1 000 cards and opens 32 connections per hospital (TLS handshakes) before its
# load starts, inside the window the counters see. So each process is measured twice: a short run and a long
# one, counters zeroed before and dumped after each; instructions per settle = (long − short) / (settles long −
# settles short), the marginal cost of one settle with the seed and the handshakes cancelled out. The "all-in"
# figure (the long run's instructions / its settles) is printed too, for comparison with older records.
measure() { # NAME PID [CG_PREFIX (default NAME)]: prints "marginal all_in n_short n_long"
  local name=$1 pid=$2 cg=${3:-$1} f1 f2 n1 n2 ir1 ir2
  callgrind_control -z "$pid" >/dev/null
  run_load "$name-short" --duration "${CG_SHORT_S:-5}" --rate 100
  callgrind_control -d "$pid" >/dev/null; sleep 1
  f1=$(ls -t "$OUT/$cg".cg.* | head -1)
  callgrind_control -z "$pid" >/dev/null
  run_load "$name-long" --duration "${CG_LONG_S:-15}" --rate 100
  callgrind_control -d "$pid" >/dev/null; sleep 1
  f2=$(ls -t "$OUT/$cg".cg.* | head -1)
  n1=$(settles_of "$name-short"); n2=$(settles_of "$name-long")
  ir1=$(total_ir "$f1"); ir2=$(total_ir "$f2")
  echo "$(( (ir2 - ir1) / (n2 - n1) )) $(( ir2 / n2 )) $n1 $n2"
}

# A private redis-server under callgrind (dumps to $OUT/redis.cg.N); sets REDIS_PORT and REDIS_PID.
start_redis_under_callgrind() {
  REDIS_PORT=$(lt_free_port)
  mkdir -p "$OUT/redis"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/redis.cg" redis-server --port "$REDIS_PORT" \
    --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy noeviction --dir "$OUT/redis" \
    >"$OUT/redis-valgrind.log" 2>&1 &
  REDIS_PID=$!; lt_track "$REDIS_PID"
  for _ in $(seq 1 300); do [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
}

case "$MODE" in
perf)
  lt_start_redis "$OUT/redis"
  lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gw" "$OUT/certs" "$REDIS_URL"
  run_load saturation --duration 12 --concurrency 32 &
  load=$!
  sleep 5
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  perf record -F 2000 -g -p "$GW_PID" -o "$OUT/gateway.perf" -- sleep 5 >/dev/null 2>&1 &
  perf record -F 2000 -g -p "$REDIS_PID" -o "$OUT/redis.perf" -- sleep 5 >/dev/null 2>&1
  wait %1 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_' | tee "$OUT/commandstats.txt" |
    awk -F'[:,=]' '{printf "%-22s calls %9s  usec/call %7s\n", $1, $3, $7}'
  wait "$load"
  sed -n '2,3p' "$OUT/saturation/summary.txt"
  perf report -i "$OUT/redis.perf" --no-children --no-inline -g none --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' |
    head -25
  echo "gateway (perf, self), by binary (the kernel's share is the system calls and the wake-ups):"
  perf report -i "$OUT/gateway.perf" --no-children --no-inline -g none --sort dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -5
  echo "gateway (perf, self):"
  perf report -i "$OUT/gateway.perf" --no-children --no-inline -g none --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' |
    head -40
  ;;
callgrind)
  start_redis_under_callgrind
  lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gw" "$OUT/certs" "redis://127.0.0.1:$REDIS_PORT"
  run_load warm-redis --duration 3 --rate 50
  read -r marginal all_in n1 n2 < <(measure redis "$REDIS_PID")
  echo "redis-server: $marginal instructions per settle (marginal, runs of $n1 and $n2 settles; all-in $all_in)"
  lt_stop_pid "$GW_PID"
  lt_stop_pid "$REDIS_PID"
  # the gateway under callgrind, on a plain Redis
  lt_start_redis "$OUT/redis-plain"
  lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gw2" "$OUT/certs" "$REDIS_URL"
  lt_stop_pid "$GW_PID"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/gateway.cg" "$SETTLEGATE_BIN" serve \
    --config "$OUT/gw2/gateway.toml" >"$OUT/gateway-valgrind.log" 2>&1 &
  GW_PID=$!; lt_track "$GW_PID"
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$OPS_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  run_load warm-gateway --duration 3 --rate 50
  read -r marginal all_in n1 n2 < <(measure gateway "$GW_PID")
  echo "gateway: $marginal instructions per settle (marginal, runs of $n1 and $n2 settles; all-in $all_in)"
  echo "gateway, long run, by function (self; includes the seed and the handshakes):"
  callgrind_annotate --threshold=100 "$(ls -t "$OUT"/gateway.cg.* | head -1)" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' | awk '$2 != "(100.0%)"' | grep -v '99\.[0-9]*%)' | sed 's/ \[.*//' | head -20
  ;;
floors)
  # redis-server and the floor server both under callgrind, counted over the same runs
  start_redis_under_callgrind
  export RUN_FLOOR=1
  both() { callgrind_control "$1" "$REDIS_PID" >/dev/null; callgrind_control "$1" "$FLOOR_PID" >/dev/null; }
  for mode in evalsha ledger; do
    FLOOR_PORT=$(lt_free_port)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/floor-$mode.cg" "$LOADTEST_BIN" --threads 1 floor \
      --mode "$mode" --listen "127.0.0.1:$FLOOR_PORT" --cert "$OUT/certs/server.pem" --key "$OUT/certs/server.key" \
      --client-ca "$OUT/certs/ca.pem" --redis-url "redis://127.0.0.1:$REDIS_PORT" >"$OUT/floor-$mode.log" 2>&1 &
    FLOOR_PID=$!; lt_track "$FLOOR_PID"
    for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$FLOOR_PORT") 2>/dev/null && break; sleep 0.1; done
    GW_URL="https://127.0.0.1:$FLOOR_PORT"
    run_load "warm-$mode" --duration 3 --rate 50
    both -z; run_load "$mode-short" --duration "${CG_SHORT_S:-5}" --rate 100; both -d; sleep 1
    r1=$(ls -t "$OUT"/redis.cg.* | head -1); s1=$(ls -t "$OUT/floor-$mode".cg.* | head -1)
    both -z; run_load "$mode-long" --duration "${CG_LONG_S:-15}" --rate 100; both -d; sleep 1
    r2=$(ls -t "$OUT"/redis.cg.* | head -1); s2=$(ls -t "$OUT/floor-$mode".cg.* | head -1)
    n1=$(settles_of "$mode-short"); n2=$(settles_of "$mode-long")
    echo "$mode floor: redis-server $(( ($(total_ir "$r2") - $(total_ir "$r1")) / (n2 - n1) )) and the floor server" \
      "$(( ($(total_ir "$s2") - $(total_ir "$s1")) / (n2 - n1) )) instructions per request (marginal, $n1 and $n2 requests)"
    lt_stop_pid "$FLOOR_PID"
  done
  ;;
steps)
  # capture the gateway's settle calls and its settle script on a plain Redis
  lt_start_redis "$OUT/redis-plain"
  redis-cli -p "$REDIS_PORT" monitor >"$OUT/monitor.txt" 2>/dev/null &
  lt_track $!
  lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gw" "$OUT/certs" "$REDIS_URL"
  run_load capture --duration 4 --rate 50
  lt_stop_pid "$GW_PID"
  python3 "$ROOT/scripts/settle_steps.py" "$OUT/monitor.txt" "$OUT/steps" "${STEPS_CALLS:-300}"
  # the same data (cards, ruleset, counters) in a redis-server under callgrind
  redis-cli -p "$REDIS_PORT" save >/dev/null
  mkdir -p "$OUT/redis"; cp "$OUT/redis-plain/dump.rdb" "$OUT/redis/dump.rdb"
  lt_stop_pid "$REDIS_PID"
  start_redis_under_callgrind
  prev=0
  for step in $(python3 -c "import sys; sys.path.insert(0, '$ROOT/scripts'); import settle_steps as s; print(' '.join(n for n, _ in s.STEPS))"); do
    redis-cli -p "$REDIS_PORT" --pipe <"$OUT/steps/load-$step.resp" >/dev/null
    callgrind_control -z "$REDIS_PID" >/dev/null
    redis-cli -p "$REDIS_PORT" --pipe <"$OUT/steps/calls-$step.resp" >"$OUT/steps/pipe-$step.txt"
    callgrind_control -d "$REDIS_PID" >/dev/null; sleep 1
    ir=$(total_ir "$(ls -t "$OUT"/redis.cg.* | head -1)")
    per=$(( ir / ${STEPS_CALLS:-300} ))
    errors=$(grep -o 'errors: [0-9]*' "$OUT/steps/pipe-$step.txt" | awk '{print $2}')
    printf '%-9s %8d instructions per call (this step: %7d; calls refused: %s)\n' "$step" "$per" $(( per - prev )) \
      "${errors:-?}"
    prev=$per
  done
  ;;
*)
  echo "usage: $0 perf|callgrind|floors|steps" >&2
  exit 2
  ;;
esac

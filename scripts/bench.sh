#!/usr/bin/env bash
# Benchmark: in one run on one machine, with the same load tool and TLS settings, measures
#   (a) the TLS "200 OK" ceiling: `settlegate-loadtest floor --mode ok` (hyper + rustls, mTLS, ring);
#   (b) the floor of the architecture: `floor --mode evalsha` (the same + one EVALSHA per request);
#   (b2) the ledger floor: `floor --mode ledger` (the same, the EVALSHA making the reads and writes one settlement
#       must record, values precomputed: the most any gateway could reach while recording what the contract keeps);
#   (b3) the same batched: `floor --mode ledger-batch` (the requests waiting meanwhile recorded together, up to 32
#       settlements per EVALSHA: the most batching settlements into one script call could give);
#   (c) settlegate's settle path (loadtest/scenarios/settle_only.toml), Redis without persistence;
#   (c') the same with Redis `--appendonly yes --appendfsync always`, after (b') the floor on that Redis;
#   (d) the same on a Redis Cluster of 3 primaries (`[redis] cluster`, the ledger slot on one of them);
# each as saturation (closed model), p99 at half of that saturation (open model) and the highest open-model rate
# that meets the scenario's p99 SLO (a ramp in steps of 20 % of saturation), with CPU per request from
# /proc/<pid>/stat. Writes target/bench/<run>/report.{json,html} and docs/BENCHMARKS.md (via `bench-report`).
#
# Every run is bounded (BENCH_DURATION seconds, at most 20); all traffic stays on 127.0.0.1; every process the
# script starts is stopped on exit.
# Environment: BENCH_DURATION (10), BENCH_CONCURRENCY (32), BENCH_RAMP (1; 0 to skip the ramps),
# BENCH_RAMP_STEP_S (4; a ramp has at most 5 steps), BENCH_RAMP_P99_MS (10: the p99 SLO of the ramps; the
# scenario's 2 ms is checked at half of saturation), BENCH_MAX_OTHERS (0.15: cores other processes may use
# during a run before it is made again), BENCH_OUT (target/bench), BENCH_DOCS
# (docs/BENCHMARKS.md; BENCH_NO_DOCS=1 to leave it alone), SETTLEGATE_BIN, LOADTEST_BIN, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

OUT=${BENCH_OUT:-$ROOT/target/bench}
DURATION=${BENCH_DURATION:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
RAMP=${BENCH_RAMP:-1}
RAMP_STEP_S=${BENCH_RAMP_STEP_S:-4}
MAX_OTHERS=${BENCH_MAX_OTHERS:-0.15}
RAMP_P99_MS=${BENCH_RAMP_P99_MS:-10}
DOCS=${BENCH_DOCS:-$ROOT/docs/BENCHMARKS.md}
SCENARIO=$ROOT/loadtest/scenarios/settle_only.toml
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$ROOT/target/release/settlegate}
# Runtime threads of every server under test (gateway, floor, ceiling) alike; 1 suits a 2-core machine that also
# runs Redis and the load tool (fewer cross-thread wake-ups); 0 = one per core.
export LT_SERVER_THREADS=${BENCH_SERVER_THREADS:-1}
LOADTEST_BIN=${LOADTEST_BIN:-$ROOT/target/release/settlegate-loadtest}
HOSPITALS=(H0001 H0002 H0003 H0004)

if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || (( DURATION < 1 || DURATION > 20 )); then
  echo "BENCH_DURATION must be 1..20 seconds" >&2
  exit 2
fi
if ! [[ "$RAMP_STEP_S" =~ ^[0-9]+$ ]] || (( RAMP_STEP_S < 1 || RAMP_STEP_S > 4 )); then
  echo "BENCH_RAMP_STEP_S must be 1..4 seconds (5 steps: at most 20 s per ramp)" >&2
  exit 2
fi

trap lt_cleanup EXIT
trap 'exit 130' INT TERM

lt_build_bins "$SETTLEGATE_BIN" "$LOADTEST_BIN"

rm -rf "$OUT"
mkdir -p "$OUT"
{
  echo "DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "NPROC=$(nproc)"
  echo "CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "KERNEL=$(uname -sr)"
  echo "REDIS=$(redis-server --version | awk '{print $3}' | sed 's/v=//')"
  echo "RUSTC=$(rustc --version 2>/dev/null || echo '?')"
  echo "AOF_FS=$(df -T "$OUT" | awk 'NR==2 {print $2}')"
  echo "MAX_OTHERS=$MAX_OTHERS"
  echo "GIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet -- . ':(exclude)docs/BENCHMARKS.md' 2>/dev/null || echo ' (with local changes)')"
} >"$OUT/machine.env"

# How late this machine wakes a sleeping thread (1 ms period, 5 s, both cores), if rt-tests' cyclictest is
# installed: on a small VM its tail, not the server, can set every p99 below.
if command -v cyclictest >/dev/null 2>&1; then
  lt_log "measuring thread wake-up latency (cyclictest, 5 s)"
  cyclictest -q -t2 -i1000 -D5 -m -h 20000 2>/dev/null | awk '
    /^[0-9]/ { c = $2 + $3; if (c > 0) { n[$1 + 0] += c; total += c; if ($1 + 0 > max) max = $1 + 0 } }
    END {
      if (total == 0) exit
      split("0.5 0.99 0.999", q, " ")
      acc = 0; k = 1
      for (us = 0; us <= max && k <= 3; us++) {
        acc += n[us]
        while (k <= 3 && acc >= q[k] * total) { v[k] = us; k++ }
      }
      printf "SCHED_LATENCY=p50 %d µs, p99 %d µs, p99.9 %d µs, max %d µs (cyclictest -t2 -i1000, idle machine)\n", v[1], v[2], v[3], max
    }' >>"$OUT/machine.env" || true
fi

# Percent of CPU time (all cores) not idle over one second.
cpu_busy_pct() {
  local a b
  read -r -a a < <(grep -m1 '^cpu ' /proc/stat)
  sleep 1
  read -r -a b < <(grep -m1 '^cpu ' /proc/stat)
  local total=0 idle i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  idle=$(( b[4] - a[4] + b[5] - a[5] ))
  (( total > 0 )) || total=1
  awk -v t="$total" -v i="$idle" 'BEGIN {printf "%.1f", 100 * (1 - i / t)}'
}

# Waits (at most 60 s) for the machine to be quiet (under 10 % busy); prints the last busy figure.
wait_quiet() {
  local busy
  for _ in $(seq 1 60); do
    busy=$(cpu_busy_pct)
    if awk -v b="$busy" 'BEGIN {exit !(b < 10)}'; then break; fi
    lt_log "waiting for a quiet machine (CPU ${busy}% busy)"
  done
  echo "$busy"
}

# The CPU other processes used during a finished run (cores), as the load tool measured it.
others_of() {
  grep -m1 '"others_cores_busy"' "$OUT/$1/report.json" | sed 's/[^0-9.]//g'
}

# measure NAME TARGET ARGS...: one bounded run of the load tool; its report lands in $OUT/NAME. A run during
# which other processes used more than BENCH_MAX_OTHERS cores is made again (at most 3 attempts in all).
measure() {
  local name=$1 target=$2; shift 2
  local attempt rc others
  for attempt in 1 2 3; do
    rm -rf "${OUT:?}/$name"
    mkdir -p "$OUT/$name"
    lt_log "run $name: $* (machine $(wait_quiet)% busy before; attempt $attempt)"
    redis-cli -p "$REDIS_PORT" config resetstat >/dev/null 2>&1 || true
    rc=0
    timeout --signal=INT --kill-after=10 180 "$LOADTEST_BIN" run --scenario "$SCENARIO" --certs "$CERTS" \
      --target "$target" --duration "$DURATION" --out "$OUT/$name" "$@" \
      >"$OUT/$name/stdout.txt" 2>"$OUT/$name/stderr.txt" || rc=$?
    if (( rc == 2 )) || [ ! -f "$OUT/$name/report.json" ]; then
      echo "run $name could not be made (exit $rc):" >&2
      tail -20 "$OUT/$name/stderr.txt" >&2
      exit 2
    fi
    redis-cli -p "$REDIS_PORT" info commandstats >"$OUT/$name/redis_commandstats.txt" 2>/dev/null || true
    sed -n '2,3p' "$OUT/$name/summary.txt" | sed "s/^/    $name: /" >&2
    others=$(others_of "$name")
    if awk -v o="${others:-0}" -v m="${RUN_MAX_OTHERS:-$MAX_OTHERS}" 'BEGIN {exit !(o <= m)}'; then return 0; fi
    lt_log "run $name: other processes used $others cores during the run (limit $MAX_OTHERS)"
  done
  lt_log "run $name: kept the last attempt although the machine was busy"
}

# The achieved rate of a finished run.
achieved() {
  grep -m1 '"achieved_rps"' "$OUT/$1/report.json" | sed 's/[^0-9.]//g'
}

half_of() {
  awk -v r="$(achieved "$1")" 'BEGIN {h = int(r / 2); if (h < 1) h = 1; print h}'
}

# A ramp in five steps of 20 % of a run's achieved rate: start:step:max.
ramp_of() {
  awk -v r="$(achieved "$1")" 'BEGIN {s = int(r / 5); if (s < 1) s = 1; printf "%d:%d:%d", s, s, 5 * s}'
}

# Saturation (closed), p99 at half of it (open), and the highest rate meeting the p99 SLO (open ramp).
measure_system() {
  local name=$1 target=$2; shift 2
  measure "$name-closed" "$target" --concurrency "$CONCURRENCY" --no-audit "$@"
  measure "$name-open" "$target" --rate "$(half_of "$name-closed")" "$@"
  if [ "$RAMP" = 1 ]; then
    measure "$name-ramp" "$target" --ramp "$(ramp_of "$name-closed")" --ramp-step-s "$RAMP_STEP_S" \
      --slo-p99-ms "$RAMP_P99_MS" --no-audit "$@"
  fi
}

CERTS="$OUT/certs"
lt_make_certs "$SETTLEGATE_BIN" "$CERTS" relief-office "${HOSPITALS[@]}"
lt_start_redis "$OUT/redis"
lt_log "redis-server (no persistence) on port $REDIS_PORT"

# (a), (b), (b2) and (b3): the reference servers.
for mode in ok evalsha ledger ledger-batch; do
  case $mode in ok) name=ceiling ;; evalsha) name=floor ;; ledger) name=ledger-floor ;; ledger-batch) name=ledger-batch ;; esac
  lt_start_floor "$LOADTEST_BIN" "$OUT/$name-server" "$CERTS" "$mode" "$REDIS_URL"
  watch=(--watch-pid "server=$FLOOR_PID")
  [ "$mode" != ok ] && watch+=(--watch-pid "redis=$REDIS_PID")
  measure_system "$name" "$FLOOR_URL" --floor "${watch[@]}"
  lt_stop_pid "$FLOOR_PID"
  # each reference server's records out of the way: the ledger modes share the `{lf}` keys, and the gateway's
  # runs start on an empty store
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
done

# (c): the gateway on the same Redis.
lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gateway" "$CERTS" "$REDIS_URL"
watch=(--watch-pid "gateway=$GW_PID" --watch-pid "redis=$REDIS_PID")
measure_system settle "$GW_URL" "${watch[@]}"
lt_stop_pid "$GW_PID"
lt_stop_pid "$REDIS_PID"

# (c'): the gateway on a Redis that fsyncs every write.
lt_start_redis "$OUT/redis-aof" --appendonly yes --appendfsync always
lt_log "redis-server (appendonly yes, appendfsync always) on port $REDIS_PORT"
# (b'): the floor on it first: its INCR is fsynced like every settle's writes, so the durable ratio compares like
# with like.
lt_start_floor "$LOADTEST_BIN" "$OUT/floor-aof-server" "$CERTS" evalsha "$REDIS_URL"
RUN_MAX_OTHERS=2 measure_system floor-aof "$FLOOR_URL" --floor --watch-pid "server=$FLOOR_PID" \
  --watch-pid "redis=$REDIS_PID"
lt_stop_pid "$FLOOR_PID"
lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gateway-aof" "$CERTS" "$REDIS_URL"
watch=(--watch-pid "gateway=$GW_PID" --watch-pid "redis=$REDIS_PID")
# Redis's own AOF-rewrite child is not a watched process: it shows as "other processes" here, and making the run
# again would not make it go away.
RUN_MAX_OTHERS=2 measure_system settle-aof "$GW_URL" "${watch[@]}"
lt_stop_pid "$GW_PID"
lt_stop_pid "$REDIS_PID"

# (d): the gateway on a Redis Cluster of three primaries (no replicas: they would share these two cores). Every
# money key is in the ledger slot, so one primary runs every script; the others hold nothing the settle path
# touches. The same scripts and keys as (c): the cluster code path is the only one.
lt_start_cluster "$OUT/cluster" 3
lt_log "redis cluster of 3 primaries; the ledger slot's primary on port $REDIS_PORT"
lt_start_gateway "$SETTLEGATE_BIN" "$OUT/gateway-cluster" "$CERTS" "$CLUSTER_REDIS"
watch=(--watch-pid "gateway=$GW_PID" --watch-pid "redis=$REDIS_PID")
measure_system settle-cluster "$GW_URL" "${watch[@]}"
lt_stop_pid "$GW_PID"

notes=()
[ -f "$ROOT/loadtest/BENCH_NOTES.md" ] && notes=(--notes "$ROOT/loadtest/BENCH_NOTES.md")
"$LOADTEST_BIN" bench-report --dir "$OUT" --out "$OUT/BENCHMARKS.md" "${notes[@]}"
if [ "${BENCH_NO_DOCS:-0}" != 1 ]; then
  cp "$OUT/BENCHMARKS.md" "$DOCS"
  lt_log "wrote $DOCS"
fi
sed -n '/^## Results/,/^## Caveats/p' "$OUT/BENCHMARKS.md"

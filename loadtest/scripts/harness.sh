# shellcheck shell=bash
# Helpers shared by scripts/loadtest-smoke.sh and scripts/bench.sh (source this file).
# Starts private processes only (a redis-server on a free port, never 6379; the gateway; floor servers), remembers
# their pids, and stops exactly those pids in lt_cleanup (call it from an EXIT trap).

LT_PIDS=()

lt_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# A free TCP port on 127.0.0.1 (never 6379).
lt_free_port() {
  local port
  if command -v python3 >/dev/null 2>&1; then
    for _ in 1 2 3 4 5; do
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      [ "$port" != 6379 ] && { echo "$port"; return 0; }
    done
  fi
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 40000 ))
    [ "$port" = 6379 ] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

# Registers a pid for lt_cleanup.
lt_track() { LT_PIDS+=("$1"); }

# Stops one tracked pid: TERM, up to 10 s, then KILL.
lt_stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Stops every process this script started, newest first.
lt_cleanup() {
  local i
  for (( i=${#LT_PIDS[@]}-1; i>=0; i-- )); do
    lt_stop_pid "${LT_PIDS[$i]}"
  done
  LT_PIDS=()
}

# lt_start_redis DIR [extra redis-server args...]: sets REDIS_PORT, REDIS_URL, REDIS_PID.
lt_start_redis() {
  local dir=$1; shift
  mkdir -p "$dir"
  REDIS_PORT=$(lt_free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --maxmemory-policy noeviction --dir "$dir" --logfile "$dir/redis.log" "$@" &
  REDIS_PID=$!
  lt_track "$REDIS_PID"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then return 0; fi
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "redis-server did not start; see $dir/redis.log" >&2
  return 1
}

# lt_start_cluster DIR N: N Redis Cluster primaries (no replicas, no persistence) on free ports, joined by
# `redis-cli --cluster create`; sets CLUSTER_REDIS (a `[redis]` line for lt_start_gateway), and REDIS_PORT /
# REDIS_PID to the primary of the ledger slot (the hash tag `{sg}`: every money key is there).
lt_start_cluster() {
  local dir=$1 n=$2 i port seeds=() addrs=()
  for i in $(seq 1 "$n"); do
    mkdir -p "$dir/$i"
    # a cluster node also listens on port + 10000 (its bus): the port must leave room for it (a free port above
    # 55535 made redis-server refuse to start, and `--cluster create` then failed on "connection refused")
    for _ in $(seq 1 50); do
      port=$(lt_free_port)
      [ "$port" -le 55535 ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null && break
    done
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
      --maxmemory-policy noeviction --dir "$dir/$i" --logfile "$dir/$i/redis.log" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 &
    lt_track "$!"
    eval "CLUSTER_PID_$port=$!"
    for _ in $(seq 1 100); do
      [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
      sleep 0.05
    done
    seeds+=("\"redis://127.0.0.1:$port\"")
    addrs+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 || {
    echo "redis-cli --cluster create failed; see $dir/create.log" >&2
    return 1
  }
  for _ in $(seq 1 200); do
    redis-cli -p "${addrs[0]##*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
    sleep 0.05
  done
  local slot
  slot=$(redis-cli -p "${addrs[0]##*:}" cluster keyslot '{sg}')
  REDIS_PORT=$(redis-cli -p "${addrs[0]##*:}" cluster nodes | awk -v s="$slot" '$3 ~ /master/ {
      for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) {
        split($2, a, "[:@]"); print a[2]; exit } } }')
  eval "REDIS_PID=\$CLUSTER_PID_$REDIS_PORT"
  CLUSTER_REDIS="cluster = [$(IFS=,; echo "${seeds[*]}")]"
}

# lt_build_bins SETTLEGATE_BIN LOADTEST_BIN: release builds (unless SKIP_BUILD=1); exit 2 if a binary is missing.
lt_build_bins() {
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    lt_log "building settlegate and settlegate-loadtest (release)"
    cargo build --release -q -p settlegate -p settlegate-loadtest
  fi
  local bin
  for bin in "$@"; do
    [ -x "$bin" ] || { echo "missing $bin" >&2; exit 2; }
  done
}

# lt_make_certs SETTLEGATE_BIN DIR ADMIN HOSPITAL...: dev CA, server and client certificates.
lt_make_certs() {
  local bin=$1 dir=$2 admin=$3; shift 3
  local args=()
  for h in "$@"; do args+=(--hospital "$h"); done
  "$bin" certs --out "$dir" --admin "$admin" "${args[@]}" >/dev/null
}

# lt_start_gateway SETTLEGATE_BIN DIR CERTS REDIS: sets GW_PORT, OPS_PORT, GW_PID, GW_URL. REDIS is a Redis URL,
# or a whole `cluster = [...]` line (lt_start_cluster's CLUSTER_REDIS).
lt_start_gateway() {
  local bin=$1 dir=$2 certs=$3 redis_url=$4 redis_line
  redis_line="url = \"$redis_url\""
  case "$redis_url" in "cluster = "*) redis_line=$redis_url ;; esac
  mkdir -p "$dir"
  GW_PORT=$(lt_free_port)
  OPS_PORT=$(lt_free_port)
  while [ "$OPS_PORT" = "$GW_PORT" ]; do OPS_PORT=$(lt_free_port); done
  cat >"$dir/gateway.toml" <<TOML
listen = "127.0.0.1:$GW_PORT"
ops_listen = "127.0.0.1:$OPS_PORT"
timezone = "Asia/Shanghai"
worker_threads = ${LT_SERVER_THREADS:-0}
[tls]
cert = "$certs/server.pem"
key = "$certs/server.key"
client_ca = "$certs/ca.pem"
[redis]
$redis_line
connect_timeout_ms = 1000
response_timeout_ms = 250
[admin]
identities = ["relief-office"]
[rate_limit]
per_second = 100000
burst = 100000
[limits]
max_body_bytes = 65536
max_import_bytes = 67108864
max_connections = 10000
header_read_timeout_ms = 5000
tls_handshake_timeout_ms = 5000
[log]
level = "warn"
format = "text"
TOML
  # the scripts' own SETTLEGATE_BIN must not reach the gateway, which reads SETTLEGATE_* as config overrides
  env -u SETTLEGATE_BIN "$bin" serve --config "$dir/gateway.toml" >"$dir/gateway.log" 2>&1 &
  GW_PID=$!
  lt_track "$GW_PID"
  GW_URL="https://127.0.0.1:$GW_PORT"
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$OPS_PORT/healthz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "the gateway did not become healthy; see $dir/gateway.log" >&2
  tail -20 "$dir/gateway.log" >&2 || true
  return 1
}

# lt_start_floor LOADTEST_BIN DIR CERTS MODE [REDIS_URL]: sets FLOOR_PORT, FLOOR_PID, FLOOR_URL.
lt_start_floor() {
  local bin=$1 dir=$2 certs=$3 mode=$4 redis_url=${5:-}
  mkdir -p "$dir"
  FLOOR_PORT=$(lt_free_port)
  local args=()
  [ "${LT_SERVER_THREADS:-0}" != 0 ] && args+=(--threads "$LT_SERVER_THREADS")
  args+=(floor --mode "$mode" --listen "127.0.0.1:$FLOOR_PORT" --cert "$certs/server.pem" \
    --key "$certs/server.key" --client-ca "$certs/ca.pem")
  [ -n "$redis_url" ] && args+=(--redis-url "$redis_url")
  "$bin" "${args[@]}" >"$dir/floor-$mode.log" 2>&1 &
  FLOOR_PID=$!
  lt_track "$FLOOR_PID"
  FLOOR_URL="https://127.0.0.1:$FLOOR_PORT"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$FLOOR_PORT") 2>/dev/null; then return 0; fi
    kill -0 "$FLOOR_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "the floor server ($mode) did not start; see $dir/floor-$mode.log" >&2
  return 1
}

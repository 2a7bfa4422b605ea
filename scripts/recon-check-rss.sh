#!/usr/bin/env bash
# Memory of a two-sided reconciliation check (POST /v1/reconciliation/check/details) on a large day: the gateway
# must hold neither side whole (docs/DESIGN.md "Two-sided reconciliation: the checks").
#
#   scripts/recon-check-rss.sh [LINES]       (default 100000; SKIP_BUILD=1 to use the release binary as it is)
#
# Starts a private redis-server (free port, never 6379) and the release gateway with dev certificates, plants a
# past day of LINES detail lines for hospital H0001 straight into the day's Redis list (the settle and reverse
# scripts' own line format, `codec::encode_event`, one line in ten a reversal; RPUSH through `redis-cli --pipe`)
# and the day's `hospitals` set, writes the hospital's LINES lines as an NDJSON file with planted differences of
# every kind (lines dropped, relief amounts changed, fake lines added, lines repeated), streams that file to the
# check with curl and the hospital's client certificate, checks that exactly the planted differences are found and
# no scratch key is left, and prints the gateway's peak RSS (VmHWM of /proc/<pid>/status) before and after the
# check, next to the size of the body and of the day. Every process it starts is stopped on exit.
# Environment: RSS_OUT (target/recon-check-rss), SETTLEGATE_BIN, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../loadtest/scripts/harness.sh
source "$ROOT/loadtest/scripts/harness.sh"

LINES=${1:-100000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${RSS_OUT:-$TARGET/recon-check-rss}
WORK=$OUT/work
SETTLEGATE_BIN=${SETTLEGATE_BIN:-$TARGET/release/settlegate}
DAY=2020-03-02
HOSPITAL=H0001
# planted differences (python3 below uses the same numbers)
DROPPED=5 CHANGED=7 FAKES=4 REPEATED=3

trap lt_cleanup EXIT
trap 'exit 130' INT TERM
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  lt_log "building settlegate (release)"
  cargo build --release -q --locked -p settlegate --bin settlegate
fi
[ -x "$SETTLEGATE_BIN" ] || { echo "missing $SETTLEGATE_BIN" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
lt_start_redis "$WORK/redis"
lt_make_certs "$SETTLEGATE_BIN" "$WORK/certs" relief-office "$HOSPITAL"
lt_start_gateway "$SETTLEGATE_BIN" "$WORK/gateway" "$WORK/certs" "$REDIS_URL"
lt_log "redis on $REDIS_PORT (pid $REDIS_PID), gateway on $GW_URL (pid $GW_PID)"

# ---- the two sides ---------------------------------------------------------------------------------------------
lt_log "generating $LINES gateway lines (RESP for redis-cli --pipe) and the hospital's NDJSON file"
python3 - "$LINES" "$DAY" "$HOSPITAL" "$WORK" "$DROPPED" "$CHANGED" "$FAKES" "$REPEATED" <<'PY'
import json, sys
lines, day, hospital, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
dropped_n, changed_n, fakes_n, repeated_n = map(int, sys.argv[5:9])

def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

def line(i):
    """The i-th line of the day: every tenth one reverses the settlement nine lines before it."""
    reversal = i % 10 == 9
    n = i - 9 if reversal else i
    total, relief = 10_000 + n, 1_000 + n % 97
    return reversal, "BIG-%07d" % n, total, relief, total - relief

key = "{sg}:recon:%s:%s:events" % (day, hospital)
step = lines // max(dropped_n + changed_n + repeated_n + 1, 1)
dropped = {step * (k + 1) + 1 for k in range(dropped_n)}
changed = {step * (dropped_n + k + 1) + 2 for k in range(changed_n)}
repeated = {step * (dropped_n + changed_n + k + 1) + 3 for k in range(repeated_n)}
with open(work + "/day.resp", "wb") as f:
    batch = []
    for i in range(lines):
        reversal, hsid, total, relief, patient = line(i)
        n = int(hsid[4:])
        batch.append("%s|%sT10:00:00.000+08:00|s2_rss%d|%s|C%d|%d|0|%d|%d|"
                     % ("R" if reversal else "S", day, n, hsid, n % 5000, total, relief, patient))
        if len(batch) == 1000 or i == lines - 1:
            f.write(resp("RPUSH", key, *batch))
            batch = []
    f.write(resp("SADD", "{sg}:recon:%s:hospitals" % day, hospital))
expected = {"matched": lines - len(dropped) - len(changed), "missing_in_hospital": [], "missing_in_gateway": [],
            "amount_mismatch": [], "duplicate_in_hospital": []}
with open(work + "/hospital.ndjson", "w") as f:
    for i in range(lines):
        reversal, hsid, total, relief, patient = line(i)
        event = "reversed" if reversal else "settled"
        sign = -1 if reversal else 1
        if i in dropped:
            expected["missing_in_hospital"].append(hsid)
            continue
        claimed_relief = sign * relief
        if i in changed:
            claimed_relief += 1
            expected["amount_mismatch"].append([hsid, event, "relief_fen", claimed_relief, sign * relief])
        row = json.dumps({"event": event, "hospital_settlement_id": hsid, "total_fen": sign * total,
                          "relief_fen": claimed_relief, "patient_fen": sign * patient}, separators=(",", ":"))
        f.write(row + "\n")
        if i in repeated:
            f.write(row + "\n")
            expected["duplicate_in_hospital"].append(hsid)
        if i % (lines // fakes_n) == 0 and len(expected["missing_in_gateway"]) < fakes_n:
            fake = "FAKE-%d" % len(expected["missing_in_gateway"])
            expected["missing_in_gateway"].append(fake)
            f.write(json.dumps({"event": "settled", "hospital_settlement_id": fake, "total_fen": 1,
                                "relief_fen": 0, "patient_fen": 1}, separators=(",", ":")) + "\n")
json.dump(expected, open(work + "/expected.json", "w"))
PY
redis-cli -p "$REDIS_PORT" --pipe <"$WORK/day.resp" >"$WORK/pipe.log"
tail -1 "$WORK/pipe.log" >&2
stored=$(redis-cli -p "$REDIS_PORT" LLEN "{sg}:recon:$DAY:$HOSPITAL:events")
[ "$stored" = "$LINES" ] || { echo "planted $stored lines, not $LINES" >&2; exit 1; }

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$GW_PID/status"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status"; }
mib() { python3 -c "print('%.1f MiB' % ($1 / 1024))"; }
call() {
  curl -sS --max-time 600 --cacert "$WORK/certs/ca.pem" --cert "$WORK/certs/$HOSPITAL.pem" \
    --key "$WORK/certs/$HOSPITAL.key" -H 'Expect:' "$@"
}

# one small call first, so the "before" figure includes a served request (TLS, buffers) and not only start-up
call -o /dev/null -H 'content-type: application/json' -X POST "$GW_URL/v1/reconciliation/check" \
  --data-binary "{\"date\":\"$DAY\",\"settled_count\":0,\"reversed_count\":0,\"net\":{\"total_fen\":0,\"insurance_fen\":0,\"relief_fen\":0,\"patient_fen\":0}}"
before_hwm=$(hwm)
before_rss=$(rss)
body_bytes=$(stat -c %s "$WORK/hospital.ndjson")
day_bytes=$(redis-cli -p "$REDIS_PORT" MEMORY USAGE "{sg}:recon:$DAY:$HOSPITAL:events" SAMPLES 0)

# ---- the check -------------------------------------------------------------------------------------------------
lt_log "checking $LINES lines: a $(mib $((body_bytes / 1024))) body streamed from disk against a day of $(mib $((day_bytes / 1024))) in Redis"
started=$(date +%s.%N)
status=$(call -o "$WORK/answer.json" -w '%{http_code}' -T "$WORK/hospital.ndjson" -X POST \
  -H 'content-type: application/x-ndjson' "$GW_URL/v1/reconciliation/check/details?date=$DAY")
elapsed=$(python3 -c "import time; print('%.2f' % (time.time() - $started))")
after_hwm=$(hwm)
after_rss=$(rss)
[ "$status" = 200 ] || { echo "details check answered $status: $(head -c 2000 "$WORK/answer.json")" >&2; exit 1; }
scratch=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'sg:check:*' | wc -l)
redis_peak=$(redis-cli -p "$REDIS_PORT" INFO memory | awk -F: '/^used_memory_peak_human/ {print $2}' | tr -d '\r')

# ---- what it found -----------------------------------------------------------------------------------------------
python3 - "$WORK/answer.json" "$WORK/expected.json" <<'PY'
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
problems = []
def same(name, a, b):
    if a != b:
        problems.append("%s: got %s, want %s" % (name, a, b))
same("matched", got["matched"], want["matched"])
same("result", got["result"], "mismatch")
same("missing_in_hospital", got["missing_in_hospital"], want["missing_in_hospital"])
same("missing_in_gateway", sorted(got["missing_in_gateway"]), sorted(want["missing_in_gateway"]))
same("amount_mismatch", sorted([m["hospital_settlement_id"], m["event"], m["field"], m["hospital"], m["gateway"]]
                               for m in got["amount_mismatch"]), sorted(want["amount_mismatch"]))
same("duplicate_in_hospital", sorted(d["hospital_settlement_id"] for d in got["duplicate_in_hospital"]),
     sorted(want["duplicate_in_hospital"]))
for k in ("missing_in_gateway", "missing_in_hospital", "amount_mismatch", "duplicate_in_hospital"):
    same(k + "_total", got[k + "_total"], len(want[k]))
print("found: matched %d of %d gateway lines (%d hospital lines); missing_in_hospital %d, missing_in_gateway %d, "
      "amount_mismatch %d, duplicate_in_hospital %d"
      % (got["matched"], got["gateway_lines"], got["hospital_lines"], got["missing_in_hospital_total"],
         got["missing_in_gateway_total"], got["amount_mismatch_total"], got["duplicate_in_hospital_total"]))
if problems:
    print("WRONG:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("every planted difference found exactly, nothing else")
PY
[ "$scratch" = 0 ] || { echo "$scratch scratch keys left in Redis" >&2; exit 1; }

echo "lines per side:        $LINES (body $(mib $((body_bytes / 1024))), day in Redis $(mib $((day_bytes / 1024))))"
echo "check took:            ${elapsed} s"
echo "gateway VmHWM before:  $(mib "$before_hwm") (VmRSS $(mib "$before_rss"))"
echo "gateway VmHWM after:   $(mib "$after_hwm") (VmRSS $(mib "$after_rss"))"
echo "peak grew by:          $(mib $((after_hwm - before_hwm)))"
echo "redis used_memory_peak: $redis_peak (the scratch hash holds the hospital's side during the call)"
echo "scratch keys left:     $scratch"

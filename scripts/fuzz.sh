#!/usr/bin/env bash
# Coverage-guided fuzzing of every target of fuzz/ (cargo-fuzz, libFuzzer, nightly), one target at a time, each for
# a bounded time. Prints per target the executions, the seconds it ran and any crash (the input libFuzzer saved
# under fuzz/artifacts/<target>/ and the panic message); exits non-zero when a target crashed or did not run.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]        (default 180 s, every target of fuzz/Cargo.toml)
#
# Corpus: fuzz/corpus/<target>/ (committed: seeds and a minimized set) is read, never written; what a run finds
# goes to fuzz/scratch/grown/<target>/ (gitignored) and is reused by the next run. FUZZ_MERGE=1 afterwards merges
# into fuzz/corpus/<target>/ only the grown inputs that add coverage (libFuzzer -merge=1; the seeds stay).
# A crash input belongs in fuzz/regressions/<target>/ once fixed: tests/fuzz_corpus.rs replays it on stable.
# Dictionaries: fuzz/dicts/<target>.dict (json_bodies.dict for the four body targets), when present.
# Environment: FUZZ_MERGE (0), FUZZ_TIMEOUT (10: seconds one input may take before libFuzzer calls it a hang),
# FUZZ_RSS_MB (2048), FUZZ_SANITIZER (address; `none` runs faster), SKIP_BUILD=1.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/fuzz"

SECS=${1:-180}
shift $(($# > 0 ? 1 : 0))
case "$SECS" in '' | *[!0-9]*)
    echo "fuzz.sh: SECONDS_PER_TARGET must be a number, got '$SECS'" >&2
    exit 2
    ;;
esac

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz.sh: cargo-fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || exit 2
fi

mkdir -p scratch/logs
FUZZ=(cargo +nightly fuzz)
SAN=(--sanitizer "${FUZZ_SANITIZER:-address}")
if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <("${FUZZ[@]}" list)
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # `cargo fuzz build` takes at most one target; without one it builds them all.
    one=()
    [ ${#TARGETS[@]} -eq 1 ] && one=("${TARGETS[0]}")
    if ! "${FUZZ[@]}" build "${SAN[@]}" "${one[@]}" >scratch/build.log 2>&1; then
        tail -n 30 scratch/build.log >&2
        exit 2
    fi
fi


failed=0
summary=()
for t in "${TARGETS[@]}"; do
    grown="scratch/grown/$t"
    mkdir -p "$grown" "corpus/$t" "artifacts/$t"
    log="scratch/logs/$t.log"
    dict=()
    case "$t" in
        settle_body | quote_body | reversal_body | eligibility_body) dict=(-dict=dicts/json_bodies.dict) ;;
        *) [ -f "dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict") ;;
    esac
    start=$(date +%s)
    "${FUZZ[@]}" run "${SAN[@]}" "$t" "$grown" "corpus/$t" -- \
        -max_total_time="$SECS" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    if [ -z "$execs" ]; then
        # libFuzzer stopped before its final stats (a crash): take the last progress line's count
        execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    fi
    if [ $rc -eq 0 ]; then
        line="$t: ${execs:-?} executions in ${took} s, no crash"
    else
        failed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')
        why=$(grep -m 1 -A 1 "panicked at" "$log" | tr '\n' ' ' | cut -c 1-300)
        line="$t: CRASH after ${execs:-?} executions in ${took} s (exit $rc): ${artifact:-no artifact} ${why:-see $log}"
    fi
    echo "$line"
    summary+=("$line")
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ $rc -eq 0 ]; then
        before=$(find "corpus/$t" -type f | wc -l)
        "${FUZZ[@]}" run "${SAN[@]}" "$t" "corpus/$t" "$grown" -- -merge=1 >"scratch/logs/$t.merge.log" 2>&1
        echo "$t: corpus $before -> $(find "corpus/$t" -type f | wc -l) files after merge"
    fi
done

echo
echo "== fuzz summary (${SECS} s per target; logs in fuzz/scratch/logs/) =="
printf '%s\n' "${summary[@]}"
exit $failed

#!/bin/sh
# Runs the libFuzzer harnesses built by `make fuzz-build` (build/fuzz), one at
# a time, each for FUZZ_SECONDS, starting from the seed corpus in
# tests/fuzz/corpus/NAME. Stops at the first crash, leak or timeout; the input
# that caused it is left in build/fuzz/artifacts/. Prints a PASS/FAIL line per
# harness (appended to $RESULTS when set, as tests/run.sh counts them).
#   tests/fuzz/run.sh [NAME...]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_BIN=${FUZZ_BIN:-$ROOT/build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
ART=$FUZZ_BIN/artifacts
mkdir -p "$ART"

result() {
    echo "$1"
    [ -n "${RESULTS:-}" ] && echo "$1" >> "$RESULTS"
    return 0
}

if ! command -v clang >/dev/null 2>&1; then
    result "FAIL fuzz: clang is not installed, the harnesses cannot be built (make deps)"
    exit 1
fi
[ $# -gt 0 ] || set -- $(cd "$ROOT/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')

failed=0
for name in "$@"; do
    bin=$FUZZ_BIN/fuzz_$name
    if [ ! -x "$bin" ]; then
        result "FAIL fuzz $name: $bin is not built (make fuzz-build)"
        failed=1
        continue
    fi
    # the seed corpus stays small and committed; what the run learns goes
    # to a working corpus under build/
    work=$FUZZ_BIN/corpus/$name
    mkdir -p "$work"
    log=$FUZZ_BIN/fuzz_$name.log
    nice "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$ART/$name-" \
        "$work" "$ROOT/tests/fuzz/corpus/$name" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        result "PASS fuzz $name: ${runs:-?} runs in ${SECONDS_EACH} s (${rate:-?}/s), no crash"
    else
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result "FAIL fuzz $name: exited $rc after ${runs:-?} runs; input: ${artifact:-none}; log: $log"
        failed=1
        [ $# -gt 1 ] && [ -z "${FUZZ_KEEP_GOING:-}" ] && break
    fi
done
exit $failed

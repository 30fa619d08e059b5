#!/bin/sh
# Runs every test: the unit tests, a few seconds of each fuzz harness, then
# each integration script (each starts its own Redis, web server and daemons
# on free loopback ports), then prints one line "N passed, N failed". Exit status 0 only when nothing failed.
#   tests/run.sh [NAME...]   run only the integration tests named
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/asan}
export BIN
OUT=${TEST_OUT:-$ROOT/tests/out}
rm -rf "$OUT"
mkdir -p "$OUT"
RESULTS=$OUT/results
: > "$RESULTS"
export RESULTS

ulimit -n 65536 2>/dev/null || true

if [ $# -eq 0 ]; then
    echo "== unit tests"
    for t in "$BIN"/test_*; do
        [ -x "$t" ] || continue
        log=$OUT/$(basename "$t").log
        "$t" > "$log" 2>&1
        rc=$?
        grep -E '^(PASS|FAIL)' "$log" >> "$RESULTS"
        # a crash or sanitizer abort shows only as the exit status
        [ $rc -eq 0 ] || grep -q '^FAIL' "$log" || echo "FAIL $(basename "$t"): exited $rc" >> "$RESULTS"
    done
    grep -c '^PASS' "$RESULTS" | sed 's/^/unit checks passed: /'
    echo "== fuzz smoke (each harness for a few seconds; make fuzz runs them longer)"
    FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-3} FUZZ_KEEP_GOING=1 sh "$ROOT/tests/fuzz/run.sh" | sed 's/^/  /'
    set -- $(cd "$ROOT/tests/integration" && ls *.sh | sed 's/\.sh$//')
fi

for name in "$@"; do
    echo "== $name"
    start=$(date +%s)
    timeout 600 bash "$ROOT/tests/integration/$name.sh" > "$OUT/$name.log" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL)' "$OUT/$name.log" | sed 's/^/  /'
    if [ $rc -ne 0 ] && ! grep -q "^FAIL $name" "$RESULTS"; then
        echo "FAIL $name: script exited $rc" >> "$RESULTS"
        echo "  FAIL $name: script exited $rc (see tests/out/$name.log)"
    fi
    echo "  ($(( $(date +%s) - start )) s)"
done

passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
if [ "$failed" -gt 0 ]; then
    echo
    echo "Failures:"
    grep '^FAIL' "$RESULTS"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Stops what scripts/run.sh (make run) started: every pid file under run/
# (or $RUN).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${RUN:-$ROOT/run}
for f in "$RUN"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill "$pid" 2>/dev/null; then
        echo "stopped $(basename "$f" .pid) ($pid)"
    fi
    rm -f "$f"
done

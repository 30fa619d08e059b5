#!/bin/bash
# make run: starts the whole system on this machine and stays in the
# foreground; Ctrl-C (or `make stop` elsewhere) stops everything it started.
#
# Redis (own data dir under run/, not the system service), the AI stand-in
# when no ai_api_key is set, the worker, ws-push, and lighttpd with the
# FastCGI API, static www/ and the WebSocket proxy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/release}
RUN=${RUN:-$ROOT/run}
mkdir -p "$RUN"
cd "$ROOT"
export CONFIG=${CONFIG:-$ROOT/settings.yaml}

# The settings in effect (file < environment), as the programs see them, and
# what follows from them (redis_host/redis_port, ai_endpoint, ...): derived
# by the programs' own code, never again here.
settings=$("$BIN/worker" --print-config) || exit 2
eval "$settings"
LOG_DIR_ABS=$(cd "$ROOT" && mkdir -p "$log_dir" && cd "$log_dir" && pwd)
export LOG_DIR=$LOG_DIR_ABS

sh "$ROOT/scripts/stop.sh" > /dev/null 2>&1 || true

started() { echo "$2" > "$RUN/$1.pid"; }
stop_all() {
    trap - INT TERM EXIT
    echo
    sh "$ROOT/scripts/stop.sh"
    exit 0
}
trap stop_all INT TERM EXIT

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() {
    for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
    echo "run: $3 did not come up on $1:$2 (see $RUN/$3.out)" >&2
    exit 1
}

# Redis: started here when redis_url is a redis:// on this machine and nothing
# answers (redis_own); a sentinel:// or any other Redis is used as it is.
if [ "$redis_own" = 1 ] && ! port_open "$redis_host" "$redis_port"; then
    mkdir -p "$RUN/redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$RUN/redis" \
        --appendonly yes --save "" > "$RUN/redis.out" 2>&1 &
    started redis $!
    wait_port "$redis_host" "$redis_port" redis
fi

if [ "$ai_standin" = 1 ]; then
    "$BIN/ai-standin" > "$RUN/ai-standin.out" 2>&1 &
    started ai-standin $!
    wait_port 127.0.0.1 "$standin_port" ai-standin
    model="the built-in AI stand-in at $ai_endpoint (no ai_api_key set: answers echo the question)"
else
    model="the real model $ai_model at $ai_endpoint"
fi

"$BIN/worker" > "$RUN/worker.out" 2>&1 &
started worker $!
# ws_processes of them share ws_port (SO_REUSEPORT): one per core to use
# (each an instance of its own: a configured instance_id gets -1, -2, ...)
for i in $(seq 1 "$ws_processes"); do
    if [ -n "$instance_id" ] && [ "$ws_processes" -gt 1 ]; then
        "$BIN/ws-push" --instance-id "$instance_id-$i" > "$RUN/ws-push-$i.out" 2>&1 &
    else
        "$BIN/ws-push" > "$RUN/ws-push-$i.out" 2>&1 &
    fi
    started "ws-push-$i" $!
done
wait_port "$bind" "$ws_port" ws-push-1
for i in $(seq 1 "$ws_processes"); do
    kill -0 "$(cat "$RUN/ws-push-$i.pid")" 2> /dev/null ||
        { echo "run: ws-push $i did not start (see $RUN/ws-push-$i.out)" >&2; exit 1; }
done

ROOT=$ROOT RUN=$RUN BIN=$BIN PORT=$port WS_PORT=$ws_port FCGI_PROCS=2 \
    sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/lighttpd/lighttpd.conf.in" "$RUN/lighttpd.conf"
# (lighttpd and fcgi-api never need the model's key)
env -u AI_API_KEY lighttpd -D -f "$RUN/lighttpd.conf" > "$RUN/lighttpd.out" 2>&1 &
started lighttpd $!
wait_port 127.0.0.1 "$port" lighttpd

# (--print-config shows redis_url with its passwords masked: nothing secret
# reaches the terminal)
case "$redis_url" in
sentinel://*) redis_shown="$redis_url (ask a Sentinel: redis-cli -h HOST -p PORT SENTINEL get-master-addr-by-name NAME)" ;;
*) redis_shown="redis-cli -u $redis_url" ;;
esac
cat <<MSG

  AI message service is running.
    Test page:   http://127.0.0.1:$port/test-websocket.html
    API:         http://127.0.0.1:$port/api/health   /api/status
                 curl -X POST http://127.0.0.1:$port/api/message -H 'Content-Type: application/json' -d '{"content":"hello"}'
    WebSocket:   ws://127.0.0.1:$port/ws   (direct: ws://$bind:$ws_port/ws)
    Redis:       $redis_shown
    Logs:        $LOG_DIR/$(date -u +%Y-%m-%d).log
  Answers come from $model.
  Press Ctrl-C (or run 'make stop') to stop everything.

MSG
wait

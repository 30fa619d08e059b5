# `make run` (scripts/run.sh) as a newcomer uses it: it starts Redis, the
# stand-in (no key set), the worker, ws-push and lighttpd with fcgi-api,
# prints the URLs, serves a whole answer, and stopping it stops everything.
. "$(dirname "$0")/../lib.sh"

export PORT=$(free_port) WS_PORT=$(free_port) STANDIN_PORT=$(free_port)
export WS_PROCESSES=2   # two ws-push share WS_PORT (shared-port.sh tests that at length)
rport=$(free_port)
export REDIS_URL="redis://127.0.0.1:$rport/0"
export RUN=$T/stack
mkdir -p "$RUN"
spawn makerun bash "$ROOT/scripts/run.sh"
wait_until 60 grep -q "is running" "$T/makerun.out" ||
    { fail "make run starts the system" "$(tail -20 "$T/makerun.out")"; exit 1; }

check "it prints the test page URL" grep -q "http://127.0.0.1:$PORT/test-websocket.html" "$T/makerun.out"
check "it says answers come from the built-in stand-in" grep -q "built-in AI stand-in" "$T/makerun.out"
check "it started ws_processes (2) ws-push on one port" \
    sh -c "[ \$(ls $RUN/ws-push-*.pid | wc -l) = 2 ] && [ \$(ss -ltnH 'sport = :$WS_PORT' | wc -l) = 2 ]"
API="http://127.0.0.1:$PORT"
r=$(http GET /api/health)
expect_eq "the API answers through lighttpd" '200 {"status":"ok","message":"服务运行正常"}' "$r"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/test-websocket.html")
expect_eq "the test page is served" 200 "$code"

listen a "ws://127.0.0.1:$PORT/ws" --wait 1 --timeout 30
r=$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"hello make run"}')
expect_match "a message is accepted" '^200 \{"code":200' "$r"
wait "$(pid_of a)"
expect_eq "the answer reaches a WebSocket client through lighttpd" "Echo: hello make run" \
    "$(grep '"type":"text"' "$T/a.out" | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n')"

# (a background job cannot get SIGINT from a script: TERM takes the same path)
pids=$(cat "$RUN"/*.pid)
stop makerun TERM
all_gone() { for p in $pids; do kill -0 "$p" 2> /dev/null && return 1; done; return 0; }
closed() { ! port_open "$1"; }
check "stopping it stops every program it started" wait_until 10 all_gone
check "and lighttpd's fcgi-api processes" wait_until 10 fcgi_count_is 0
check "nothing listens on its ports any more" closed "$PORT"
check "nor on Redis's" closed "$rport"

# lighttpd under a slowloris load (deploy/lighttpd as shipped): more slow
# connections than the old connection limit, each sending its request head a
# byte a second and then nothing. A normal request is still answered, a quiet
# WebSocket through lighttpd stays, and lighttpd drops the slow connections
# once they fall silent (server.max-read-idle). Bounded: 5,000 connections to
# 127.0.0.1, about 30 s.
. "$(dirname "$0")/../lib.sh"

ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null
[ "$(ulimit -n)" -ge 12000 ] || { fail "slowloris test needs 12000 descriptors" "ulimit -n is $(ulimit -n)"; exit 1; }

start_redis
start_wspush ws1
start_lighttpd
listen quiet "ws://127.0.0.1:$PORT/ws" --timeout 60

SLOW=5000
spawn slow "$BIN/slowloris" --port "$PORT" --conns "$SLOW" --trickle 6 --wait 25
check "the slow connections are open" wait_until 20 grep -q "^# trickling on $SLOW connections" "$T/slow.out"

# while they trickle: answered at all, within a generous bound
expect_eq "a normal API request is answered during the attack" '200 {"status":"ok","message":"服务运行正常"}' \
    "$(http GET /api/health --max-time 15)"
code=$(curl -s --max-time 15 -o /dev/null -w '%{http_code}' "$API/test-websocket.html")
expect_eq "the test page is served during the attack" 200 "$code"
check "(the slow connections were still open then)" sh -c "! grep -q '^connected=' $T/slow.out"

check "the slowloris run ends" wait_until 40 grep -q '^connected=' "$T/slow.out"
result=$(grep '^connected=' "$T/slow.out")
expect_eq "lighttpd closed every slow connection once it fell silent" "connected=$SLOW closed=$SLOW open=0" "$result"
check "the quiet WebSocket through lighttpd is still open" sh -c "! grep -q '^# \(closed\|disconnected\)' $T/quiet.out"
expect_match "and the API answers after the attack" '^200 ' "$(http GET /api/health)"

# The whole path: HTTP POST through lighttpd -> Redis stream -> worker ->
# stand-in model (SSE) -> Redis pub/sub -> ws-push -> WebSocket clients.
. "$(dirname "$0")/../lib.sh"

start_redis
start_standin
start_worker w1
start_wspush ws1
start_lighttpd

r=$(http GET /api/health)
expect_eq "health answers as the seed does" '200 {"status":"ok","message":"服务运行正常"}' "$r"

listen a "ws://127.0.0.1:$WS_PORT_ws1/ws" --wait 1 --timeout 20
listen b "ws://127.0.0.1:$WS_PORT_ws1/" --wait 1 --timeout 20
listen p "ws://127.0.0.1:$PORT/ws" --wait 1 --timeout 20
wait_until 5 sh -c "curl -s $API/api/status | grep -q '\"connectionCount\":3'"
r=$(http GET /api/status)
expect_eq "status counts every client" '200 {"status":"ok","connectionCount":3,"message":"服务运行正常"}' "$r"

r=$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"hello streaming world"}')
expect_match "message is accepted with its id" '^200 \{"code":200,"message":"消息发送成功","id":"[0-9]+-[0-9]+","conversation":"[0-9a-f]{32}"\}$' "$r"
id=$(printf '%s' "$r" | sed 's/.*"id":"\([^"]*\)".*/\1/')

wait "$(pid_of a)"; rc_a=$?
wait "$(pid_of b)"; rc_b=$?
expect_eq "client on /ws gets the whole answer" 0 "$rc_a"
expect_eq "client on / gets the whole answer" 0 "$rc_b"
wait "$(pid_of p)"
expect_eq "client through lighttpd's /ws proxy gets the whole answer" 0 $?
text=$(grep '"type":"text"' "$T/a.out" | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n')
expect_eq "answer streams chunk by chunk and reassembles" "Echo: hello streaming world" "$text"
expect_eq "answer came in several chunks" 4 "$(grep -c '"type":"text"' "$T/a.out")"
expect_match "chunks carry the job id" "\"id\":\"$id\"" "$(head -2 "$T/a.out" | tail -1)"
check "chunks are in order" sh -c "grep '\"type\":\"text\"' $T/a.out | sed 's/.*\"seq\":\([0-9]*\).*/\1/' | tr '\n' ' ' | grep -qx '0 1 2 3 '"
check "done frame ends the answer" grep -q "\"type\":\"done\",\"id\":\"$id\"" "$T/a.out"
check "job is acknowledged and removed" sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"

# a message sent over the socket is answered to that socket only
listen c "ws://127.0.0.1:$WS_PORT_ws1/ws" --wait 1 --timeout 20
out=$(wsclient --url "ws://127.0.0.1:$WS_PORT_ws1/ws" --send '{"type":"text","content":"private question"}' --wait 1 --timeout 20)
expect_eq "socket message gets its answer" "Echo: private question" \
    "$(printf '%s\n' "$out" | grep '"type":"text"' | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n')"
check "socket message is acknowledged with queued" sh -c "printf '%s' '$out' | grep -q '\"type\":\"queued\"'"
# then a broadcast, which c must see: it was listening all along
rcli XADD "${REDIS_PREFIX}jobs" '*' kind text content "for everyone" reply "${REDIS_PREFIX}out:all" ts 0 > /dev/null
wait "$(pid_of c)"
check "another client was listening meanwhile (it gets the broadcast after it)" grep -q '"content":"everyone"' "$T/c.out"
check "other clients do not see a private answer" sh -c "! grep -q private $T/c.out"

check "log file is written by day" test -s "$LOG_DIR/$(date -u +%Y-%m-%d).log"

if [ "${REDIS_VIA:-tcp}" = unix ]; then
    clients=$(rcli CLIENT LIST)
    expect_eq "over the socket: the only TCP client is this redis-cli" 1 \
        "$(printf '%s\n' "$clients" | grep -c 'addr=127\.0\.0\.1:')"
    # worker (intake, control), ws-push (subscriber, commands), fcgi-api (one per process that served)
    check "over the socket: worker, ws-push and fcgi-api are connected" \
        test "$(printf '%s\n' "$clients" | grep -c "addr=$T/redis/redis.sock")" -ge 5
fi

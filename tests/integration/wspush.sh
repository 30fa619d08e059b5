# ws-push: many clients, broadcast vs private routing across two instances,
# fragmented large frames, malformed frames, oversize frames, a slow client,
# keepalive and idle timeout, Redis restart, SIGTERM.
. "$(dirname "$0")/../lib.sh"

start_redis
start_standin
start_worker w1
start_wspush ws1
start_wspush ws2
WS1="ws://127.0.0.1:$WS_PORT_ws1/ws"
WS2="ws://127.0.0.1:$WS_PORT_ws2/ws"
broadcast() {   # broadcast QUESTION: queue a job answered to everyone
    redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind text content "$1" reply "${REDIS_PREFIX}out:all" ts 0 > /dev/null
}
answer_text() { grep '"type":"text"' | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n'; }

# -- many clients on two instances all get a broadcast
listen many1 "$WS1" --clients 200 --wait 1 --timeout 60
listen many2 "$WS2" --clients 100 --wait 1 --timeout 60
check "presence counts every connection" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT GET ${REDIS_PREFIX}wspush:ws1) = 200 ] && [ \$(redis-cli -p $REDIS_PORT GET ${REDIS_PREFIX}wspush:ws2) = 100 ]"
broadcast "to everyone"
wait "$(pid_of many1)"; expect_eq "200 clients of instance 1 get the broadcast" 0 $?
wait "$(pid_of many2)"; expect_eq "100 clients of instance 2 get the broadcast" 0 $?
expect_eq "broadcast content is whole" "Echo: to everyone" "$(answer_text < "$T/many1.out")"
check "presence drops when clients leave" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT GET ${REDIS_PREFIX}wspush:ws1) = 0 ]"

# -- a socket's answer goes to that socket only, whichever instance
listen spy1 "$WS1" --timeout 8
listen spy2 "$WS2" --timeout 8
out=$("$BIN/wsclient" --url "$WS2" --send '{"type":"text","content":"just for me"}' --wait 1 --timeout 20)
expect_eq "private answer reaches its socket" "Echo: just for me" "$(printf '%s\n' "$out" | answer_text)"
# the answers index records each answer's channel: P out:<instance>:<run>:<conn>
id=$(printf '%s\n' "$out" | grep -m1 '"type":"text"' | sed 's/.*"id":"\([^"]*\)".*/\1/')
reply=$(rcli XRANGE "${REDIS_PREFIX}answers" - + | grep -x -A2 -- "$id" | tail -1)
expect_match "private answer channel names instance and connection" "^${REDIS_PREFIX}out:ws2:[0-9a-zA-Z]+:[0-9]+\$" "$reply"
check "... and both instances listen: the broadcast channel and one pattern each" sh -c "redis-cli -p $REDIS_PORT PUBSUB CHANNELS '*' | grep -qx '${REDIS_PREFIX}out:all' && redis-cli -p $REDIS_PORT PUBSUB NUMPAT | grep -qx 2"
wait "$(pid_of spy1)"; wait "$(pid_of spy2)"
check "no other client of the same instance sees it" sh -c "! grep -q 'just for me' $T/spy2.out"
check "no client of another instance sees it" sh -c "! grep -q 'just for me' $T/spy1.out"

# -- a large image in many fragments
{ cat "$ROOT/tests/fixtures/pixel.png"; head -c 3000000 /dev/urandom; } > "$T/big.png"
out=$("$BIN/wsclient" --url "$WS1" --send-image "$T/big.png" --question "big?" --fragment 65536 --wait 1 --timeout 60)
expect_eq "3 MB image sent in 64 KiB fragments is answered" "I see a PNG image of $(stat -c %s "$T/big.png") bytes. You asked: big?" "$(printf '%s\n' "$out" | answer_text)"
qid=$(printf '%s\n' "$out" | sed -n 's/.*"type":"queued","id":"\([0-9-]*\)".*/\1/p')
expect_match "the image is acknowledged with the id its answer carries" "\"id\":\"$qid\"" \
    "$(printf '%s\n' "$out" | grep '"type":"done"')"
out=$("$BIN/wsclient" --url "$WS1" --send '{"type":"text","content":"in pieces"}' --fragment 3 --wait 1 --timeout 20)
expect_eq "text in 3-byte fragments is answered" "Echo: in pieces" "$(printf '%s\n' "$out" | answer_text)"

# -- malformed frames: an error each, the connection stays usable
out=$("$BIN/wsclient" --url "$WS1" --send 'not json' --send '[1,2]' --send '{"type":"video","content":"x"}' \
    --send '{"type":"text","content":""}' --send '{"type":"text"}' --send '{"type":"text","content":7}' \
    --binary 'binary!' --send '{"type":"image","content":"@@@"}' --send '{"type":"image","content":"aGVsbG8="}' \
    --send '{"type":"text","content":"still here"}' --wait 1 --timeout 20)
expect_eq "each malformed frame gets an error frame without id" 9 "$(printf '%s\n' "$out" | grep '^{"type":"error"' | grep -vc '"id"')"
expect_match "bad JSON is named" 'not a JSON object' "$out"
expect_match "unknown type is named" 'unknown \\"type\\"' "$out"
expect_match "empty content is named" 'is empty' "$out"
expect_match "binary frames are refused" 'binary frames are not supported' "$out"
expect_match "bad base64 is named" 'not valid base64' "$out"
expect_match "a non-image is refused" 'JPEG、PNG、GIF、WebP' "$out"
expect_eq "the connection is kept and answers afterwards" "Echo: still here" "$(printf '%s\n' "$out" | answer_text)"

# -- the question about an image follows the text rules: a string, no NUL
png64=$(base64 -w0 "$ROOT/tests/fixtures/pixel.png")
out=$("$BIN/wsclient" --url "$WS1" \
    --send "{\"type\":\"image\",\"content\":\"$png64\",\"question\":\"a\\u0000b\"}" \
    --send "{\"type\":\"image\",\"content\":\"$png64\",\"question\":7}" \
    --send "{\"type\":\"image\",\"content\":\"$png64\",\"question\":\"\\ud800\"}" \
    --send "{\"type\":\"text\",\"content\":\"x\\u0000\"}" \
    --send "{\"type\":\"image\",\"content\":\"$png64\",\"question\":\"pixel?\"}" --wait 1 --timeout 20)
expect_eq "each bad question gets an error frame without id" 4 "$(printf '%s\n' "$out" | grep '^{"type":"error"' | grep -vc '"id"')"
expect_match "a NUL in the question is named" 'question contains a NUL character' "$out"
expect_match "a question that is not a string is named" '\\"question\\" must be a string' "$out"
expect_match "a NUL in a text message is named" '\\"content\\" contains a NUL character' "$out"
expect_eq "the good question on the same socket is answered" "I see a PNG image of $(stat -c %s "$ROOT/tests/fixtures/pixel.png") bytes. You asked: pixel?" \
    "$(printf '%s\n' "$out" | answer_text)"
expect_eq "only the good question became a job" 1 "$(printf '%s\n' "$out" | grep -c '^{"type":"queued"')"

# -- frames over the limit
start_wspush ws3 --max-image-bytes 2048 --max-message-bytes 100
out=$("$BIN/wsclient" --url "ws://127.0.0.1:$WS_PORT_ws3/ws" --send-image "$T/big.png" --fragment 65536 \
    --send '{"type":"text","content":"small one"}' --wait 1 --timeout 30)
expect_match "an oversize frame gets an error" 'message too large' "$out"
expect_eq "and the connection goes on" "Echo: small one" "$(printf '%s\n' "$out" | answer_text)"
long=$(head -c 101 /dev/zero | tr '\0' a)
out=$("$BIN/wsclient" --url "ws://127.0.0.1:$WS_PORT_ws3/ws" --send "{\"type\":\"text\",\"content\":\"$long\"}" --timeout 3)
expect_match "text over max_message_bytes gets an error" 'message too long' "$out"
stop ws3

# -- a slow client is closed; a fast one is not delayed
# 4000 frames of 10 kB (40 MB) published straight to the broadcast channel:
# far more than the kernel buffers hold for a client that reads nothing, and
# than its send queue of 1000 frames.
flood() {
    body=$(head -c 10000 /dev/zero | tr '\0' x)
    ch="${REDIS_PREFIX}out:all"
    for i in $(seq 1 4000); do
        f="{\"type\":\"text\",\"id\":\"flood\",\"seq\":$((i - 1)),\"content\":\"$body\"}"
        printf '*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' ${#ch} "$ch" ${#f} "$f"
    done
    f='{"type":"done","id":"flood","seq":4000}'
    printf '*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' ${#ch} "$ch" ${#f} "$f"
}
in_order() {    # prints "N frames in order" or where the order broke
    grep '"id":"flood"' "$1" | sed 's/.*"seq":\([0-9]*\).*/\1/' |
        awk '$1 + 1 != NR { print "frame " NR " has seq " $1; bad = 1; exit } END { if (!bad) print NR " frames in order" }'
}
start_wspush ws4 --ws-queue-frames 1000
listen slow "ws://127.0.0.1:$WS_PORT_ws4/ws" --no-read --timeout 60
listen fast "ws://127.0.0.1:$WS_PORT_ws4/ws" --wait 1 --timeout 60
flood | redis-cli -p "$REDIS_PORT" --pipe > /dev/null
wait "$(pid_of fast)"; expect_eq "the fast client gets the whole flood" 0 $?
expect_eq "the fast client got every frame in order" "4001 frames in order" "$(in_order "$T/fast.out")"
check "the slow client is closed as too slow" wait_until 20 grep -q "too slow" "$T/ws4.out"
stop slow
stop ws4

# -- pings and idle timeout
start_wspush ws5 --ws-ping-interval 1 --ws-idle-timeout 3
listen idle "ws://127.0.0.1:$WS_PORT_ws5/ws" --no-read --timeout 30
listen alive "ws://127.0.0.1:$WS_PORT_ws5/ws" --timeout 30
check "a client that never answers pings is dropped" wait_until 15 sh -c "[ \$(redis-cli -p $REDIS_PORT GET ${REDIS_PREFIX}wspush:ws5) = 1 ]"
sleep 4   # past the idle timeout: the client that answers pings must still be there
expect_eq "a client that answers pings stays connected" 1 "$(rcli GET "${REDIS_PREFIX}wspush:ws5")"
stop alive
stop idle
stop ws5

# -- Redis restart: clients stay, answers flow again
listen keep "$WS1" --wait 1 --timeout 60
restart_redis
check "ws-push resubscribes after a Redis restart" wait_until 15 sh -c "[ \$(grep -c 'subscriber link connected' $T/ws1.out) -ge 2 ]"
wait_until 15 sh -c "[ \$(grep -c 'command link connected' $T/ws1.out) -ge 2 ]"
wait_until 15 grep -q "redis connection back" "$T/w1.out"
check "the client was not disconnected" sh -c "grep -q '^# connected' $T/keep.out && ! grep -q '^# \\(closed\\|disconnected\\)' $T/keep.out"
broadcast "after restart"
wait "$(pid_of keep)"; expect_eq "the same client gets answers after the restart" 0 $?

# -- SIGTERM: close frames to every client
listen bye "$WS1" --timeout 20
stop ws1
wait_until 5 grep -q "# closed" "$T/bye.out"
check "clients get close 1001 on shutdown" grep -q "# closed 1001" "$T/bye.out"
check "presence is removed on shutdown" sh -c "[ \$(redis-cli -p $REDIS_PORT EXISTS ${REDIS_PREFIX}wspush:ws1) = 0 ]"

# -- a restarted instance (same name, connection ids from 1 again) never
# reuses a reply channel: a new client gets nothing of a former client's
# answer that is still being published
LOG_LEVEL=debug start_wspush ws9
W9="ws://127.0.0.1:$WS_PORT_ws9/ws"
wsclient --url "$W9" --send '{"type":"text","content":"private @@tokens=150 @@delay=20"}' --timeout 0.5 > "$T/former.out"
pid9=$(grep '"type":"queued"' "$T/former.out" | sed 's/.*"id":"\([^"]*\)".*/\1/')
check "the former client got part of its answer" grep -q '"type":"text"' "$T/former.out"
LOG_LEVEL=debug restart_wspush ws9
listen newcomer "$W9" --wait 1 --timeout 20
expect_eq "the newcomer has the former client's connection id" 2 "$(grep -c 'client 1 connected' "$T/ws9.out")"
broadcast "for everyone"
wait "$(pid_of newcomer)"
expect_eq "the newcomer gets what is meant for everyone" 0 $?
check "the former answer was still being published" sh -c "redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}answer:$pid9 | grep -qv '^0$'"
check "the newcomer got none of the former client's answer" sh -c "! grep -q '$pid9' $T/newcomer.out"

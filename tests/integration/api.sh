# fcgi-api through lighttpd: every endpoint, every error path, multipart edge
# cases, two processes sharing one Redis, Redis going away and coming back.
. "$(dirname "$0")/../lib.sh"

export LOG_LEVEL=debug MAX_IMAGE_BYTES=20000 MAX_MESSAGE_BYTES=100
start_redis
start_wspush ws1
# (the key is set where lighttpd starts, as `make run` may have it: fcgi-api
# must not get it)
AI_API_KEY=sk-test-not-for-fcgi FCGI_PROCS=2 start_lighttpd
unset AI_API_KEY
PNG="$ROOT/tests/fixtures/pixel.png"
J='Content-Type: application/json'

# -- the seed's shapes
expect_eq "GET /api/health" '200 {"status":"ok","message":"服务运行正常"}' "$(http GET /api/health)"
expect_eq "GET /api/status with no clients" '200 {"status":"ok","connectionCount":0,"message":"服务运行正常"}' "$(http GET /api/status)"
expect_match "POST /api/message" '^200 \{"code":200,"message":"消息发送成功","id":"[0-9]+-[0-9]+","conversation":"[0-9a-f]{32}"\}$' \
    "$(http POST /api/message -H "$J" -d '{"content":"hi"}')"
expect_match "POST /api/message with charset" '^200 ' \
    "$(http POST /api/message -H 'Content-Type: application/json; charset=utf-8' -d '{"content":"你好"}')"
check "message job is in the stream" sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}jobs - + | grep -q 你好"
check "message job replies to everyone" sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}jobs - + | grep -qx '${REDIS_PREFIX}out:all'"

# -- message errors
expect_match "invalid JSON" '^400 \{"code":400,"message":"JSON 格式错误' "$(http POST /api/message -H "$J" -d '{"content":')"
expect_match "missing content" '^400 .*missing \\"content\\"' "$(http POST /api/message -H "$J" -d '{"text":"x"}')"
expect_match "empty content" '^400 .*is empty' "$(http POST /api/message -H "$J" -d '{"content":""}')"
expect_match "blank content" '^400 .*is empty' "$(http POST /api/message -H "$J" -d '{"content":"  \n "}')"
expect_match "non-string content" '^400 .*must be a string' "$(http POST /api/message -H "$J" -d '{"content":42}')"
expect_match "JSON that is not an object" '^400 .*missing' "$(http POST /api/message -H "$J" -d '["content"]')"
expect_match "wrong content type" '^400 .*application/json' "$(http POST /api/message -H 'Content-Type: text/plain' -d '{"content":"x"}')"
long=$(head -c 101 /dev/zero | tr '\0' a)
expect_match "content over max_message_bytes" '^400 .*too long' "$(http POST /api/message -H "$J" -d "{\"content\":\"$long\"}")"
huge=$(head -c 5000 /dev/zero | tr '\0' a)
expect_match "body over the limit" '^400 .*too large' "$(http POST /api/message -H "$J" -d "{\"content\":\"$huge\"}")"
expect_match "content with a NUL" '^400 .*\\"content\\" contains a NUL character' "$(http POST /api/message -H "$J" -d '{"content":"a\u0000b"}')"
before=$(rcli XLEN "${REDIS_PREFIX}jobs")
expect_eq "bad requests queue nothing" 2 "$before"

# -- lighttpd's body limit follows max_image_bytes (deploy/ is rendered)
expect_eq "lighttpd's body limit is fcgi-api's (max_image_bytes 20000)" 1 \
    "$(grep -cx 'server.max-request-size = 84' "$T/run/lighttpd.conf")"
MAX_IMAGE_BYTES=30000000 ROOT=$ROOT RUN=$T/run BIN=$BIN WS_PORT=1 \
    sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/lighttpd/lighttpd.conf.in" "$T/other.conf"
expect_eq "a larger max_image_bytes renders a larger lighttpd limit" 1 \
    "$(grep -cx 'server.max-request-size = 29361' "$T/other.conf")"

# -- HEAD: GET's status and headers, no body (the web server's view)
raw() {     # raw METHOD PATH: the whole HTTP/1.1 response, as sent
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf '%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" "$2" >&3
    timeout 10 cat <&3 | tr -d '\r'
    exec 3<&-
}
h=$(raw HEAD /api/health)
expect_match "HEAD /api/health is 200 JSON" '^HTTP/1.1 200 OK.*Content-Type: application/json' "$(printf '%s' "$h" | tr '\n' ' ')"
expect_eq "HEAD /api/health has no body" "" "$(printf '%s\n' "$h" | sed '1,/^$/d')"
g=$(raw GET /api/health)
expect_match "(GET through the same raw request has the body)" '服务运行正常' "$(printf '%s\n' "$g" | sed '1,/^$/d')"
expect_match "HEAD /api/status is 200" '^HTTP/1.1 200 ' "$(raw HEAD /api/status)"
check "405 on a GET route allows GET and HEAD" sh -c "curl -si $API/api/status -X POST -d '' | grep -qi '^Allow: GET, HEAD'"

# -- fcgi-api does not get the model's API key
p1=$(fcgi_pids | head -1)
check "fcgi-api gets the environment it needs (REDIS_URL)" sh -c "tr '\0' '\n' < /proc/$p1/environ | grep -q '^REDIS_URL='"
check "fcgi-api does not get AI_API_KEY" sh -c "! tr '\0' '\n' < /proc/$p1/environ | grep -q '^AI_API_KEY='"
check "(lighttpd was started with AI_API_KEY)" sh -c "tr '\0' '\n' < /proc/\$(cat $T/run/lighttpd.pid)/environ | grep -q '^AI_API_KEY='"

# -- routing
expect_eq "unknown path is 404 JSON" '404 {"code":404,"message":"接口不存在 (not found)"}' "$(http GET /api/nope)"
expect_match "wrong method is 405 JSON" '^405 \{"code":405' "$(http GET /api/message)"
check "405 says what is allowed" sh -c "curl -si $API/api/message -X GET | grep -qi '^Allow: POST'"
expect_match "query strings are ignored" '^200 ' "$(http GET '/api/health?x=1')"

# -- images
r=$(http POST /api/image -F "image=@$PNG" -F 'content=what is it?')
expect_match "POST /api/image" '^200 \{"code":200,"message":"图片发送成功","id":"[0-9]+-[0-9]+","conversation":"[0-9a-f]{32}"\}$' "$r"
id=$(printf '%s' "$r" | sed 's/.*"id":"\([^"]*\)".*/\1/')
key=$(rcli XRANGE "${REDIS_PREFIX}jobs" "$id" "$id" | grep -A1 -x image | tail -1)
expect_match "image job references its image key" "^${REDIS_PREFIX}image:[0-9a-f]{32}$" "$key"
check "image bytes stored under their own key" sh -c "[ \$(redis-cli -p $REDIS_PORT STRLEN $key) = $(stat -c %s "$PNG") ]"
ttl=$(rcli TTL "$key")
check "image key has a TTL" test "$ttl" -gt 0
check "job carries mime and question" sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}jobs $id $id | tr '\n' ' ' | grep -q 'content what is it? .*mime image/png'"
expect_match "image with prompt field and filename lies" '^200 ' "$(http POST /api/image -F "image=@$PNG;filename=x.txt;type=text/plain" -F 'prompt=p')"
printf 'GIF89a\001\000\001\000' > "$T/a.gif"
expect_match "GIF accepted by magic bytes" '^200 ' "$(http POST /api/image -F "image=@$T/a.gif")"
printf 'not an image at all' > "$T/fake.png"
expect_match "non-image rejected whatever its name" '^400 .*JPEG、PNG、GIF、WebP' "$(http POST /api/image -F "image=@$T/fake.png;type=image/png")"
expect_match "missing image field" '^400 .*missing field \\"image\\"' "$(http POST /api/image -F 'content=only text')"
: > "$T/empty.png"
expect_match "empty image" '^400 .*is empty' "$(http POST /api/image -F "image=@$T/empty.png")"
expect_match "not multipart" '^400 .*multipart/form-data' "$(http POST /api/image -H "$J" -d '{}')"
expect_match "multipart without boundary" '^400 ' "$(http POST /api/image -H 'Content-Type: multipart/form-data' -d 'x')"
expect_match "truncated multipart" '^400 .*closing boundary' \
    "$(http POST /api/image -H 'Content-Type: multipart/form-data; boundary=zz' --data-binary $'--zz\r\nContent-Disposition: form-data; name="image"\r\n\r\n\x89PNG')"
{ cat "$PNG"; head -c 20000 /dev/zero; } > "$T/big.png"
expect_match "image over max_image_bytes is 413" '^413 .*too large' "$(http POST /api/image -F "image=@$T/big.png")"
head -c 200000 /dev/zero > "$T/huge.png"
expect_match "body far over the limit is 413" '^413 ' "$(http POST /api/image -F "image=@$T/huge.png")"
printf '\r\n--zzX\r\n\r\n--z' > "$T/crlf.bin"; cat "$PNG" "$T/crlf.bin" "$PNG" > "$T/tricky.png"
expect_match "image with CRLF and boundary-like bytes" '^200 ' \
    "$(http POST /api/image -H 'Content-Type: multipart/form-data; boundary="zz"' --data-binary @<(printf -- '--zz\r\nContent-Disposition: form-data; name="image"; filename="t.png"\r\nContent-Type: image/png\r\n\r\n'; cat "$T/tricky.png"; printf '\r\n--zz--\r\n'))"
id=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$T/body")
key=$(rcli XRANGE "${REDIS_PREFIX}jobs" "$id" "$id" | grep -A1 -x image | tail -1)
check "multipart body kept byte for byte" sh -c "redis-cli -p $REDIS_PORT --no-raw GET $key > /dev/null && [ \$(redis-cli -p $REDIS_PORT STRLEN $key) = $(stat -c %s "$T/tricky.png") ]"

# -- the question about an image follows the text rules: UTF-8, no NUL
image_asking() {   # image_asking FIELD PRINTF-BYTES: POST /api/image with that question
    http POST /api/image -H 'Content-Type: multipart/form-data; boundary=zz' --data-binary @<(
        printf -- '--zz\r\nContent-Disposition: form-data; name="%s"\r\n\r\n' "$1"; printf "$2"
        printf -- '\r\n--zz\r\nContent-Disposition: form-data; name="image"\r\n\r\n'; cat "$PNG"
        printf -- '\r\n--zz--\r\n')
}
jobs_before=$(rcli XLEN "${REDIS_PREFIX}jobs")
expect_match "a question that is not UTF-8 is refused" \
    '^400 \{"code":400,"message":"问题不是有效的 UTF-8 \(question is not valid UTF-8\)"\}$' \
    "$(image_asking content 'what\377?')"
expect_match "a prompt with a NUL is refused" '^400 .*question contains a NUL character' \
    "$(image_asking prompt 'a\000b')"
expect_eq "refused questions queue nothing" "$jobs_before" "$(rcli XLEN "${REDIS_PREFIX}jobs")"
r=$(image_asking content '这是什么?')
expect_match "a UTF-8 question sent the same way is queued" '^200 ' "$r"
id=$(printf '%s' "$r" | sed 's/.*"id":"\([^"]*\)".*/\1/')
check "and kept as it was sent" sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}jobs $id $id | grep -qx '这是什么?'"

# -- status counts clients of every instance
start_wspush ws2
listen c1 "ws://127.0.0.1:$WS_PORT_ws1/ws" --timeout 30
listen c2 "ws://127.0.0.1:$WS_PORT_ws2/ws" --timeout 30
listen c3 "ws://127.0.0.1:$WS_PORT_ws2/ws" --timeout 30
check "connectionCount sums the instances" wait_until 5 sh -c "curl -s $API/api/status | grep -q '\"connectionCount\":3'"
stop ws2 KILL
check "a dead instance stops counting within its TTL" wait_until 20 sh -c "curl -s $API/api/status | grep -q '\"connectionCount\":1'"

# -- two fcgi-api processes share the work
expect_eq "lighttpd runs two fcgi-api processes" 2 "$(fcgi_pids | wc -l)"
for i in $(seq 1 40); do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST "$API/api/message" -H "$J" -d "{\"content\":\"n$i\"}" &
done > "$T/codes"
wait_for_curls() { [ "$(wc -l < "$T/codes")" -ge 40 ]; }
wait_until 30 wait_for_curls
expect_eq "40 parallel posts all succeed" 40 "$(grep -c '^200$' "$T/codes")"
pids_serving=$(grep 'fcgi-api\[' "$LOG_DIR"/*.log | grep 'POST /api/message' | sed 's/.*fcgi-api\[\([0-9]*\)\].*/\1/' | sort -u | wc -l)
expect_eq "both processes served requests" 2 "$pids_serving"

# -- requests that wait together are taken in one turn (one Redis round trip)
# With the processes stopped, lighttpd's connections queue on their sockets;
# woken, a process takes all of its queue in one turn.
fcgi=$(fcgi_pids | tr '\n' ' ')
backlog() { ss -xlnH | awk -v d="$T/run/" 'index($5, d) == 1 {n += $3} END {print n + 0}'; }
backlog_reaches() { [ "$(backlog)" -ge "$1" ]; }
hold_requests() { kill -STOP $fcgi; TURNS=""; }
# release_requests N: wakes the processes once N connections wait for them
release_requests() { wait_until 10 backlog_reaches "$1"; kill -CONT $fcgi; }
turn() {   # turn NAME METHOD PATH [curl args]: one request in the background -> $T/turn.NAME
    n=$1; m=$2; p=$3; shift 3
    curl -s --max-time 20 -o "$T/turn.$n.body" -w '%{http_code}' -X "$m" "$API$p" "$@" > "$T/turn.$n" &
    TURNS="$TURNS $!"
}
hold_requests
for i in 1 2 3 4 5 6; do turn "m$i" POST /api/message -H "$J" -d "{\"content\":\"turn-$i\"}"; done
turn bad POST /api/message -H "$J" -d '{"content":'
turn empty POST /api/message -H "$J" -d '{"content":"  "}'
turn img POST /api/image -F "image=@$PNG" -F content=turn-image
turn health GET /api/health
turn status GET /api/status
turn nf GET /api/nothing
release_requests 12
wait $TURNS
r() { printf '%s %s' "$(cat "$T/turn.$1")" "$(cat "$T/turn.$1.body")"; }
ok=0
for i in 1 2 3 4 5 6; do
    id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$T/turn.m$i.body")
    [ "$(cat "$T/turn.m$i")" = 200 ] && rcli XRANGE "${REDIS_PREFIX}jobs" "$id" "$id" | grep -qx "turn-$i" && ok=$((ok + 1))
done
expect_eq "in one turn: each message gets the id of its own job" 6 "$ok"
expect_match "in one turn: bad JSON is 400" '^400 .*invalid JSON' "$(r bad)"
expect_match "in one turn: empty content is 400" '^400 .*is empty' "$(r empty)"
expect_match "in one turn: the image is queued" '^200 .*图片发送成功' "$(r img)"
id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$T/turn.img.body")
check "in one turn: the image job has its question" sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}jobs $id $id | grep -qx turn-image"
expect_eq "in one turn: health" '200 {"status":"ok","message":"服务运行正常"}' "$(r health)"
expect_match "in one turn: status" '^200 \{"status":"ok","connectionCount":[0-9]+' "$(r status)"
expect_match "in one turn: unknown path is 404" '^404 ' "$(r nf)"
check "the waiting requests were taken in turns of several" \
    sh -c "grep -h 'turn of' $LOG_DIR/*.log | sed 's/.*turn of \([0-9]*\).*/\1/' | awk '\$1 >= 4 {f = 1} END {exit !f}'"

# Redis stalls (CLIENT PAUSE) while a turn waits for its replies: 503 after
# the 1 s Redis timeout, not a hang; then the next request reconnects.
hold_requests
rcli CLIENT PAUSE 4000 WRITE > /dev/null
for i in 1 2 3; do turn "p$i" POST /api/message -H "$J" -d '{"content":"paused"}'; done
release_requests 3
wait $TURNS
codes=$(cat "$T/turn.p1" "$T/turn.p2" "$T/turn.p3" | tr -d '\n')
expect_eq "Redis stalled: the waiting turn is answered 503" 503503503 "$codes"
expect_match "Redis stalled: the client is told only that" '"message":"服务暂时不可用 \(service unavailable, try again\)"' "$(cat "$T/turn.p1.body")"
check "Redis stalled: the log says why" grep -q "redis: no reply within 1000 ms" "$LOG_DIR"/*.log
check "after the stall, requests succeed again" wait_until 10 sh -c "curl -s -X POST $API/api/message -H '$J' -d '{\"content\":\"after\"}' | grep -q 消息发送成功"

# -- Redis down: 503 at once, then back to normal
stop redis
expect_match "health is 503 when Redis is down" '^503 \{"status":"error","message":".*redis' "$(http GET /api/health)"
expect_match "message is 503 when Redis is down" '^503 \{"code":503,"status":"error"' "$(http POST /api/message -H "$J" -d '{"content":"x"}')"
expect_match "status is 503 when Redis is down" '^503 ' "$(http GET /api/status)"
restart_redis
expect_match "fcgi-api reconnects when Redis is back" '^200 ' "$(http POST /api/message -H "$J" -d '{"content":"again"}')"
expect_eq "health is ok again" '200 {"status":"ok","message":"服务运行正常"}' "$(http GET /api/health)"

# -- Redis closed fcgi-api's connections (CLIENT KILL, its timeout, a
# restart) while Redis itself is fine: every request still succeeds, the
# closed connection is noticed and the request sent again on a new one
for i in 1 2 3 4 5 6; do http GET /api/health > /dev/null; done   # both processes connected
killed=$(rcli CLIENT KILL TYPE normal)
check "CLIENT KILL closed connections" test "$killed" -ge 1
ok=0
for i in 1 2 3 4 5; do
    http GET /api/health | grep -q '^200 ' && ok=$((ok + 1))
    http GET /api/status | grep -q '^200 ' && ok=$((ok + 1))
    http POST /api/message -H "$J" -d '{"content":"after kill"}' | grep -q '^200 ' && ok=$((ok + 1))
    http POST /api/image -F "image=@$PNG" | grep -q '^200 ' && ok=$((ok + 1))
    [ "$i" = 2 ] && rcli CLIENT KILL TYPE normal > /dev/null
done
expect_eq "connections killed by Redis: every request succeeds" 20 "$ok"
check "the closed connection was noticed and the turn sent again" grep -q 'sending again on a new one' "$LOG_DIR"/*.log
restart_redis
ok=0
for i in 1 2 3 4 5 6; do http POST /api/message -H "$J" -d '{"content":"after restart"}' | grep -q '^200 ' && ok=$((ok + 1)); done
expect_eq "Redis restarted between requests: every request succeeds" 6 "$ok"

# -- Redis out of memory (maxmemory + noeviction): it answers PING but
# refuses writes, and health says so
rcli CONFIG SET maxmemory-policy noeviction > /dev/null
rcli CONFIG SET maxmemory 1 > /dev/null
check "Redis refuses XADD (the condition tested)" sh -c "redis-cli -p $REDIS_PORT XADD ${REDIS_PREFIX}x '*' a b | grep -q OOM"
expect_match "health is 503 when Redis refuses writes" '^503 \{"status":"error","message":"redis refuses writes: OOM' "$(http GET /api/health)"
expect_match "message is 503 when Redis refuses writes, the client told only that" \
    '^503 \{"code":503,"status":"error","message":"服务暂时不可用 \(service unavailable, try again\)"\}$' \
    "$(http POST /api/message -H "$J" -d '{"content":"x"}')"
check "... and the log says why" grep -q "redis refuses writes: OOM" "$LOG_DIR"/*.log
rcli CONFIG SET maxmemory 0 > /dev/null
expect_eq "health is ok when Redis takes writes again" '200 {"status":"ok","message":"服务运行正常"}' "$(http GET /api/health)"
expect_eq "the write probe leaves no key" 0 "$(rcli EXISTS "${REDIS_PREFIX}health")"

# -- Redis down for 50 requests: a few log lines, not one per request (the
# same problem is logged once per 10 s; the next line counts those left out)
problems() { cat "$LOG_DIR"/*.log | grep -E ' (WARN |ERROR) fcgi-api\['; }
before=$(problems | wc -l)
stop redis
codes=""
for i in $(seq 1 25); do
    codes="$codes$(http GET /api/health | cut -c1-3)"
    codes="$codes$(http POST /api/message -H "$J" -d '{"content":"down"}' | cut -c1-3)"
done
expect_eq "Redis down: the 50 requests are 503" "$(printf '503%.0s' $(seq 1 50))" "$codes"
logged=$(( $(problems | wc -l) - before ))
check "Redis down: 50 requests log a few lines, not one each ($logged)" test "$logged" -le 6
sleep 10.5
for i in 1 2 3 4; do http GET /api/health > /dev/null; done
later=$(problems | tail -n +$((before + 1)))
expect_match "Redis down: the problem is logged" 'cannot connect to redis' "$later"
expect_match "Redis down: a later line counts the lines left out" 'cannot connect to redis.*\(([1-9][0-9]*) more like it left out\)' "$later"
restart_redis

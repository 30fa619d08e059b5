# fcgi-api behind Apache 2.4 (mod_proxy_fcgi, fcgi-api started by spawn-fcgi)
# and WebSocket through mod_proxy_wstunnel.
. "$(dirname "$0")/../lib.sh"

start_redis
start_standin
start_worker w1
start_wspush ws1

start_spawn_fcgi

export PORT=$(free_port)
mkdir -p "$T/run"
chmod 755 "$T" "$T/run"
ROOT=$ROOT RUN=$T/run BIN=$BIN WS_PORT=$WS_PORT_ws1 FCGI_PORT=$FCGI_PORT \
    sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/apache/httpd.conf.in" "$T/run/apache2.conf"
check "apache config is valid" apache2 -t -f "$T/run/apache2.conf"
expect_eq "Apache's body limit is fcgi-api's (default max_image_bytes)" 1 \
    "$(grep -cx 'LimitRequestBody 10551296' "$T/run/apache2.conf")"
MAX_IMAGE_BYTES=30000000 ROOT=$ROOT RUN=$T/run BIN=$BIN WS_PORT=1 \
    sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/apache/httpd.conf.in" "$T/other.conf"
expect_eq "a larger max_image_bytes renders a larger Apache limit" 1 \
    "$(grep -cx 'LimitRequestBody 30065536' "$T/other.conf")"
apache2 -f "$T/run/apache2.conf" -k start > "$T/apache.out" 2>&1
API="http://127.0.0.1:$PORT"
check "apache answers" wait_until 10 curl -fs "$API/api/health"

expect_eq "health through Apache" '200 {"status":"ok","message":"服务运行正常"}' "$(http GET /api/health)"
expect_match "status through Apache" '^200 \{"status":"ok","connectionCount":0,' "$(http GET /api/status)"
expect_match "bad JSON through Apache" '^400 \{"code":400' "$(http POST /api/message -H 'Content-Type: application/json' -d '{')"
expect_match "404 through Apache" '^404 ' "$(http GET /api/unknown)"
check "test page served by Apache" sh -c "curl -fs $API/ | grep -qi '<html'"

listen a "ws://127.0.0.1:$PORT/ws" --wait 2 --timeout 30
expect_match "image through Apache" '^200 .*图片发送成功' "$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png")"
expect_match "message through Apache" '^200 .*消息发送成功' "$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"through apache"}')"
wait "$(pid_of a)"
expect_eq "WebSocket through Apache's proxy gets both answers" 0 $?
check "text answer streamed through Apache" grep -q '"content":"apache"' "$T/a.out"
check "image answer streamed through Apache" grep -q 'PNG' "$T/a.out"
out=$(wsclient --url "ws://127.0.0.1:$PORT/" --send '{"type":"text","content":"root path"}' --wait 1 --timeout 20)
expect_match "WebSocket upgrade on / through Apache" '"content":"path"' "$out"

# -- Apache streams a request body as it comes: a large body still on its way
# does not hold up the requests taken before it in the same turn
J='Content-Type: application/json'
set -- $(fcgi_pids)
kill -STOP "$1" "$2"
queued() { ss -tlnH "sport = :$FCGI_PORT" | awk '{n += $2} END {print n + 0}'; }
queued_reaches() { [ "$(queued)" -ge "$1" ]; }
for i in 1 2 3; do
    curl -s -o "$T/quick$i" -X POST "$API/api/message" -H "$J" -d "{\"content\":\"quick $i\"}" &
done
wait_until 10 queued_reaches 3
mkfifo "$T/upload"
curl -s -o "$T/slow.body" -w '%{http_code}' -X POST -T - -H 'Content-Length: 40000' -H 'Transfer-Encoding:' -H 'Expect:' \
    -H 'Content-Type: multipart/form-data; boundary=zz' "$API/api/image" < "$T/upload" > "$T/slow.code" &
slow=$!
exec 7> "$T/upload"
head -c 20000 /dev/zero >&7
wait_until 10 queued_reaches 4
kill -CONT "$1"     # one process takes all four in one turn
quick_done() { for q in 1 2 3; do grep -q 消息发送成功 "$T/quick$q" 2> /dev/null || return 1; done; }   # (not i: wait_until counts with it)
check "requests taken before a large body still coming in are answered without waiting for it" \
    wait_until 10 quick_done
head -c 20000 /dev/zero >&7
exec 7>&-
wait "$slow"
expect_match "the large body is read when it has come, and answered" '^400' "$(cat "$T/slow.code")"
kill -CONT "$2"
expect_match "both processes serve again" '^200 ' "$(http GET /api/health)"

# -- slow clients (slowloris): connections that send their request head a
# byte a second are dropped at the head's deadline, while they still send;
# a normal request is answered meanwhile
spawn slow "$BIN/slowloris" --port "$PORT" --conns 300 --trickle 40 --wait 0
check "(the slow connections are open)" wait_until 20 grep -q '^# trickling on 300 connections' "$T/slow.out"
expect_match "a normal request is answered during the slow connections (Apache)" '^200 ' "$(http GET /api/health --max-time 15)"
check "the slowloris run ends" wait_until 45 grep -q '^connected=' "$T/slow.out"
expect_eq "Apache closed every slow connection while it still trickled" "connected=300 closed=300 open=0" "$(grep '^connected=' "$T/slow.out")"

# -- the bearer token reaches fcgi-api through apache (authentication on)
pkill -f "fcgi-api --config $CONFIG"
check "(the fcgi-api processes stopped)" wait_until 10 fcgi_count_is 0
AUTH_JWT_SECRET=webserver-secret spawn-fcgi -a 127.0.0.1 -p "$FCGI_PORT" -F 2 -- "$BIN/fcgi-api" --config "$CONFIG" > "$T/spawn-fcgi-auth.out" 2>&1
check "(two fcgi-api with authentication on)" wait_until 10 fcgi_count_is 2
token=$(AUTH_JWT_SECRET=webserver-secret "$BIN/aimsg-token" --sub alice)
expect_match "without a token: 401 through apache" '^401 .*"code":401' "$(http GET /api/status)"
expect_match "with the token in Authorization: 200 through apache (it reaches fcgi-api)" \
    '^200 .*"userConnectionCount":0' "$(http GET /api/status -H "Authorization: Bearer $token")"

# fcgi-api behind nginx (fastcgi_pass to spawn-fcgi's processes) and
# WebSocket through nginx's proxy: deploy/nginx/aimsg.conf.in as shipped,
# inside a minimal nginx.conf of the test's own.
. "$(dirname "$0")/../lib.sh"

start_redis
start_standin
start_worker w1
start_wspush ws1

start_spawn_fcgi

export PORT=$(free_port)
N=$T/nginx
nginx_conf "$N"
check "nginx config is valid" nginx -t -q -p "$N" -c "$N/nginx.conf"
expect_eq "nginx's body limit is fcgi-api's (default max_image_bytes)" 1 \
    "$(grep -cx '    client_max_body_size 10551296;' "$N/aimsg.conf")"
MAX_IMAGE_BYTES=30000000 ROOT=$ROOT RUN=$N BIN=$BIN WS_PORT=1 \
    sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/nginx/aimsg.conf.in" "$T/other.conf"
expect_eq "a larger max_image_bytes renders a larger nginx limit" 1 \
    "$(grep -cx '    client_max_body_size 30065536;' "$T/other.conf")"
spawn nginx nginx -p "$N" -c "$N/nginx.conf"
API="http://127.0.0.1:$PORT"
check "nginx answers" wait_until 10 curl -fs "$API/api/health"

J='Content-Type: application/json'
expect_eq "health through nginx" '200 {"status":"ok","message":"服务运行正常"}' "$(http GET /api/health)"
expect_match "status through nginx" '^200 \{"status":"ok","connectionCount":0,' "$(http GET /api/status)"
expect_match "bad JSON through nginx" '^400 \{"code":400' "$(http POST /api/message -H "$J" -d '{')"
expect_match "405 with Allow through nginx" '^405 ' "$(http GET /api/message)"
expect_match "404 through nginx" '^404 ' "$(http GET /api/unknown)"
check "test page served by nginx on /" sh -c "curl -fs $API/ | grep -qi '<html'"

# -- nginx keeps its FastCGI connections (fastcgi_keep_conn): fcgi-api serves
# request after request on one, and a POST with a body on it too
fcgi_sockets() { ss -tanH "( sport = :$FCGI_PORT or dport = :$FCGI_PORT )" | grep -vc LISTEN; }
ok=0
for i in $(seq 1 60); do
    case $((i % 3)) in
    0) r=$(curl -s -o /dev/null -w '%{http_code}' -H "$J" -d '{"content":"kept"}' "$API/api/message") ;;
    *) r=$(curl -s -o /dev/null -w '%{http_code}' "$API/api/status") ;;
    esac
    [ "$r" = 200 ] && ok=$((ok + 1))
done
expect_eq "60 requests in a row through nginx, GETs and POSTs" 60 "$ok"
n=$(fcgi_sockets)
# (one kept connection is two sockets here, nginx's end and fcgi-api's; one
# connection per request would leave some 60 in TIME_WAIT)
check "... went over a few kept FastCGI connections ($n sockets), not one each" test "$n" -ge 2 -a "$n" -le 8
# nginx reloaded (twice) while requests keep coming: its old worker closes
# the kept connections, the new one opens others, often under descriptor
# numbers just freed, sometimes while a connection waits to be accepted;
# fcgi-api frees the slots of the closed ones and waits on the new ones
statuses() {
    for i in $(seq 1 "$1"); do
        curl -s -m 5 -o /dev/null -w '%{http_code}\n' "$API/api/status"
    done
}
statuses 150 > "$T/reload-statuses" &
LOOP=$!
for round in 1 2; do
    sleep 0.3
    kill -HUP "$(pid_of nginx)"
done
wait "$LOOP"
expect_eq "150 requests while nginx reloads twice: all answered 200" \
    "150 200" "$(sort "$T/reload-statuses" | uniq -c | awk '{print $1, $2}' | tr '\n' ' ' | sed 's/ $//')"
expect_eq "... and 30 more after the reloads" 30 "$(statuses 30 | grep -c '^200$')"
n=$(fcgi_sockets)
check "... the closed connections are gone ($n sockets)" test "$n" -ge 2 -a "$n" -le 8
# (an image over max_image_bytes in a body under nginx's limit: fcgi-api's 413)
{ cat "$ROOT/tests/fixtures/pixel.png"; head -c 10490000 /dev/zero; } > "$T/big.png"
expect_match "image over the limit through nginx is fcgi-api's 413" '^413 \{"code":413' "$(http POST /api/image -F "image=@$T/big.png")"
{ cat "$ROOT/tests/fixtures/pixel.png"; head -c 10600000 /dev/zero; } > "$T/bigger.png"
expect_match "a body over the rendered limit is refused by nginx itself" '^413 <' "$(http POST /api/image -F "image=@$T/bigger.png")"

listen a "ws://127.0.0.1:$PORT/ws" --wait 2 --timeout 30
expect_match "image through nginx" '^200 .*图片发送成功' "$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png" -F content=nginx)"
expect_match "message through nginx" '^200 .*消息发送成功' "$(http POST /api/message -H "$J" -d '{"content":"through nginx"}')"
wait "$(pid_of a)"
expect_eq "WebSocket through nginx's /ws proxy gets both answers" 0 $?
check "text answer streamed through nginx" grep -q '"content":"nginx"' "$T/a.out"
check "image answer streamed through nginx" grep -q 'PNG' "$T/a.out"
out=$(wsclient --url "ws://127.0.0.1:$PORT/" --send '{"type":"text","content":"root path"}' --wait 1 --timeout 20)
expect_match "WebSocket upgrade on / through nginx, answered to that socket" '"content":"path"' "$out"

# -- slow clients (slowloris): connections that send their request head a
# byte a second are dropped at the head's deadline, while they still send;
# a normal request is answered meanwhile
spawn slow "$BIN/slowloris" --port "$PORT" --conns 300 --trickle 40 --wait 0
check "(the slow connections are open)" wait_until 20 grep -q '^# trickling on 300 connections' "$T/slow.out"
expect_match "a normal request is answered during the slow connections (nginx)" '^200 ' "$(http GET /api/health --max-time 15)"
check "the slowloris run ends" wait_until 45 grep -q '^connected=' "$T/slow.out"
expect_eq "nginx closed every slow connection while it still trickled" "connected=300 closed=300 open=0" "$(grep '^connected=' "$T/slow.out")"

# -- the bearer token reaches fcgi-api through nginx (authentication on)
pkill -f "fcgi-api --config $CONFIG"
check "(the fcgi-api processes stopped)" wait_until 10 fcgi_count_is 0
AUTH_JWT_SECRET=webserver-secret spawn-fcgi -a 127.0.0.1 -p "$FCGI_PORT" -F 2 -- "$BIN/fcgi-api" --config "$CONFIG" > "$T/spawn-fcgi-auth.out" 2>&1
check "(two fcgi-api with authentication on)" wait_until 10 fcgi_count_is 2
token=$(AUTH_JWT_SECRET=webserver-secret "$BIN/aimsg-token" --sub alice)
expect_match "without a token: 401 through nginx" '^401 .*"code":401' "$(http GET /api/status)"
expect_match "with the token in Authorization: 200 through nginx (it reaches fcgi-api)" \
    '^200 .*"userConnectionCount":0' "$(http GET /api/status -H "Authorization: Bearer $token")"

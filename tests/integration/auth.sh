# Users and access (issue 13): JWT on every route and socket, answers to a
# user on each of the user's sockets and nobody else's, owner-only answers,
# admin broadcast, token expiry, the Origin allowlist, X-Forwarded-For from
# trusted proxies only, and quotas kept exact in Redis across two fcgi-api
# processes and two ws-push instances.
#
# The settings go into settings.yaml ($CONFIG), which every program reads
# (fcgi-api gets only the environment variables lighttpd passes on). A group
# of checks that needs other settings rewrites it and restarts ws-push and
# lighttpd (which spawns fcgi-api).
# The groups are numbered as the tests the issue asks for; they run in the
# order that needs the fewest restarts.
. "$(dirname "$0")/../lib.sh"

SECRET="auth-test-secret-$$"
J='Content-Type: application/json'

# ---- tokens ------------------------------------------------------------------
# Valid tokens come from aimsg-token (it reads the secret from $CONFIG); the
# malicious ones are made here with openssl, to be exactly what a check needs.
token() {       # token SUB [TTL] [aimsg-token options]: a valid token
    s=$1 ttl=${2:-600}
    shift; [ $# -gt 0 ] && shift
    "$BIN/aimsg-token" --sub "$s" --ttl "$ttl" "$@" 2> /dev/null
}
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt_with() {    # jwt_with HEADER-JSON PAYLOAD-JSON [SECRET] [DIGEST]: an HMAC-signed JWT
    h=$(printf '%s' "$1" | b64url)
    p=$(printf '%s' "$2" | b64url)
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst "-${4:-sha256}" -hmac "${3:-$SECRET}" -binary | b64url)
    printf '%s.%s.%s' "$h" "$p" "$s"
}
HS='{"alg":"HS256","typ":"JWT"}'
bearer() { printf 'Authorization: Bearer %s' "$1"; }

# ---- settings, restarts --------------------------------------------------------
settings() {    # settings [YAML-LINES]: the secret, no leeway, and these
    {
        echo "auth_jwt_secret: \"$SECRET\""
        echo "auth_jwt_leeway: 0"
        echo "ws_auth_timeout: 5"
        [ $# -gt 0 ] && printf '%s\n' "$@"
    } > "$CONFIG"
}
restart_lighttpd() {
    kill "$(cat "$T/run/lighttpd.pid")"
    wait_until 10 fcgi_count_is 0 || fail "lighttpd stops its fcgi-api processes"
    rm -f "$T/run/lighttpd.pid"
    start_lighttpd
}
restart_all() { # every ws-push and fcgi-api reads $CONFIG again
    restart_wspush ws1
    restart_wspush ws2
    restart_lighttpd
}

# ---- helpers -----------------------------------------------------------------
post() {        # post TOKEN CONTENT: "STATUS BODY" of POST /api/message
    http POST /api/message -H "$J" -H "$(bearer "$1")" -d "{\"content\":\"$2\"}"
}
id_of() { sed -n 's/.*"id":"\([0-9]*-[0-9]*\)".*/\1/p' | head -1; }
done_ids() {    # done_ids FILE: the ids of the done frames in FILE, sorted
    grep '^{"type":"done"' "$1" | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort
}
handshake() {   # handshake PORT QUERY [HEADER...]: the status of a WebSocket upgrade of /ws;
                # its head in $T/hs.head, the body of a refusal in $T/hs.body
    p=$1 q=$2; shift 2
    exec 3<> "/dev/tcp/127.0.0.1/$p"
    {
        printf 'GET /ws%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' "$q" "$p"
        printf 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
        for h in "$@"; do printf '%s\r\n' "$h"; done
        printf '\r\n'
    } >&3
    : > "$T/hs.head"
    : > "$T/hs.body"
    while IFS= read -r -t 5 line <&3 && [ "${line%$'\r'}" != "" ]; do printf '%s\n' "${line%$'\r'}" >> "$T/hs.head"; done
    # a refusal is closed after its body; an upgraded socket is left alone
    grep -q '^HTTP/1.1 101' "$T/hs.head" || timeout 5 cat <&3 > "$T/hs.body"
    exec 3<&-
    sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$T/hs.head"
}
jobs_added() { rcli XINFO STREAM "${REDIS_PREFIX}jobs" | grep -A1 -x entries-added | tail -1; }
note() { echo "# $(date +%T.%N | cut -c1-12) $*"; }
ended() { grep -q '"status":"\(done\|error\|cancelled\)"' "$T/body"; }
answer_ended() { http GET "/api/answer/$2" -H "$(bearer "$1")" > /dev/null; ended; }

settings
start_redis
STANDIN_DELAY_MS=0 start_standin
start_worker w1
start_wspush ws1
start_wspush ws2
start_lighttpd
WS1="ws://127.0.0.1:$WS_PORT_ws1/ws"
WS2="ws://127.0.0.1:$WS_PORT_ws2/ws"
ALICE=$(token alice)
BOB=$(token bob)
ADMIN=$(token root 600 --admin)

# ==== 1. every refusal ==========================================================
note "1. every refusal"
# (the sockets that must time out or expire run while the HTTP checks do)
listen silent "$WS1" --timeout 60                   # never authenticates
listen shortlived "$WS2?token=$(token carol 3)" --timeout 60
listen renewed "$WS2?token=$(token carol 3)" --send "{\"type\":\"auth\",\"token\":\"$(token carol 600)\"}" --timeout 60
listen shortframe "$WS1" --send "{\"type\":\"auth\",\"token\":\"$(token carol 3)\"}" --timeout 60
started=$(date +%s)

unauthorized() {    # unauthorized NAME [curl args]: 401, a JSON error, WWW-Authenticate: Bearer
    n=$1; shift
    r=$(curl -s -D "$T/h401" -o "$T/b401" -w '%{http_code}' -X POST "$API/api/message" -H "$J" -d '{"content":"no"}' "$@")
    expect_match "$n: 401 JSON with WWW-Authenticate: Bearer" '^401 \{"code":401,"message":"[^"]+"\} Bearer' \
        "$r $(cat "$T/b401") $(sed -n 's/^WWW-Authenticate: \(Bearer\).*/\1/ip' "$T/h401")"
}
jobs_before=$(jobs_added)
unauthorized "no token"
unauthorized "not a Bearer token" -H "Authorization: Basic $(printf 'alice:pw' | base64)"
unauthorized "a malformed token" -H "$(bearer 'not.a.jwt')"
unauthorized "a token of two parts" -H "$(bearer "$(token alice | cut -d. -f1,2)")"
unauthorized "a bad signature" -H "$(bearer "$(jwt_with "$HS" '{"sub":"alice","exp":9999999999}' wrong-secret)")"
# the payload changed under a good signature: a forged admin claim
forged=$(token alice 600 | cut -d. -f1).$(printf '{"sub":"alice","exp":9999999999,"admin":true}' | b64url).$(token alice 600 | cut -d. -f3)
unauthorized "a payload changed after signing" -H "$(bearer "$forged")"
none=$(printf '{"alg":"none","typ":"JWT"}' | b64url).$(printf '{"sub":"alice","exp":9999999999}' | b64url).
unauthorized "alg none" -H "$(bearer "$none")"
unauthorized "alg none with a signature" -H "$(bearer "$none$(token alice | cut -d. -f3)")"
unauthorized "an expired token" -H "$(bearer "$(token alice -5)")"
unauthorized "a token without sub" -H "$(bearer "$(jwt_with "$HS" '{"exp":9999999999}')")"
unauthorized "a token not valid yet (nbf)" -H "$(bearer "$(jwt_with "$HS" "{\"sub\":\"alice\",\"exp\":9999999999,\"nbf\":$(( $(date +%s) + 60 ))}")")"
unauthorized "another HMAC alg with the same secret (HS384)" -H "$(bearer "$(jwt_with '{"alg":"HS384","typ":"JWT"}' '{"sub":"alice","exp":9999999999}' "$SECRET" sha384)")"
expect_eq "refused requests queue nothing" "$jobs_before" "$(jobs_added)"
check "(a token made the same way with HS256 is good)" sh -c "curl -s -X POST $API/api/message -H '$J' -H '$(bearer "$(jwt_with "$HS" '{"sub":"alice","exp":9999999999}')")' -d '{\"content\":\"hi\"}' | grep -q '\"code\":200'"
for route in "GET /api/status" "GET /api/answer/1-0" "POST /api/cancel" "POST /api/broadcast" "POST /api/image"; do
    expect_match "$route without a token is 401" '^401 \{"code":401' "$(http ${route% *} "${route#* }" -d '')"
done
expect_match "GET /api/health needs no token" '^200 \{"status":"ok"' "$(http GET /api/health)"
expect_match "a good token is accepted" '^200 \{"code":200,"message":"[^"]*","id":"[0-9]+-[0-9]+","conversation":"[0-9a-f]{32}"\}$' "$(post "$ALICE" 'welcome')"

jobs_before=$(jobs_added)
# WebSocket: at the handshake
expect_eq "WS ?token=bad is refused at the handshake: 401" 401 "$(handshake "$WS_PORT_ws1" '?token=bad')"
check "... with WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$T/hs.head"
expect_match "... and a JSON error" '^\{"code":401,"message":"[^"]+"\}$' "$(cat "$T/hs.body")"
expect_eq "WS ?token=<expired> is 401" 401 "$(handshake "$WS_PORT_ws2" "?token=$(token alice -5)")"
expect_eq "WS ?token=<alg none> is 401" 401 "$(handshake "$WS_PORT_ws2" "?token=$none")"
expect_eq "WS ?token=<bad signature> is 401" 401 "$(handshake "$WS_PORT_ws1" "?token=$(jwt_with "$HS" '{"sub":"alice","exp":9999999999}' wrong-secret)")"
expect_eq "WS ?token=<good> is upgraded: 101" 101 "$(handshake "$WS_PORT_ws1" "?token=$ALICE")"
expect_eq "WS without a token is upgraded (to send its auth frame)" 101 "$(handshake "$WS_PORT_ws1" '')"
# WebSocket: after it
out=$(wsclient --url "$WS1" --send '{"type":"text","content":"before auth"}' --timeout 5)
expect_match "a message before auth: error 401" '^\{"type":"error","code":401,"content":".+"\}$' "$(printf '%s\n' "$out" | grep '^{' | head -1)"
expect_match "... then close 1008" '# closed 1008' "$out"
out=$(wsclient --url "$WS2" --send '{"type":"auth","token":"bad"}' --send '{"type":"text","content":"after bad auth"}' --timeout 5)
expect_match "a bad auth frame: error 401" '^\{"type":"error","code":401,' "$(printf '%s\n' "$out" | grep '^{' | head -1)"
expect_match "... then close 1008" '# closed 1008' "$out"
expect_eq "... and nothing else" 1 "$(printf '%s\n' "$out" | grep -c '^{')"
out=$(wsclient --url "$WS2" --send "{\"type\":\"auth\",\"token\":\"$none\"}" --timeout 5)
expect_match "an auth frame with alg none: error 401, close 1008" '"code":401.*# closed 1008' "$(printf '%s' "$out" | tr '\n' ' ')"
expect_eq "refused sockets queue nothing" "$jobs_before" "$(jobs_added)"
out=$(wsclient --url "$WS1" --send "{\"type\":\"auth\",\"token\":\"$BOB\"}" --send '{"type":"text","content":"hello"}' --wait 1 --timeout 10)
expect_match "an auth frame first: authenticated as its sub, with exp" "^\\{\"type\":\"authenticated\",\"user\":\"bob\",\"exp\":[0-9]+\\}\$" "$(printf '%s\n' "$out" | grep '^{' | head -1)"
expect_match "... then questions are answered" '^\{"type":"done"' "$(printf '%s\n' "$out" | grep '^{' | tail -1)"
out=$(wsclient --url "$WS1?token=$ALICE" --timeout 1)
expect_match "?token=: authenticated at once" "^\\{\"type\":\"authenticated\",\"user\":\"alice\",\"exp\":[0-9]+\\}\$" "$(printf '%s\n' "$out" | grep '^{' | head -1)"

# -- broadcast: admins only; to every user's sockets, not to one unauthenticated
note "broadcast"
EVE=$(token eve)
listen eve1 "$WS1?token=$EVE" --timeout 100   # eve asks nothing: sees broadcasts only
listen eve2 "$WS2?token=$EVE" --timeout 100
listen ba1 "$WS1?token=$ALICE" --wait 1 --timeout 20
listen ba2 "$WS2?token=$ALICE" --wait 1 --timeout 20
listen bb1 "$WS1?token=$BOB" --wait 1 --timeout 20
listen bb2 "$WS2" --send "{\"type\":\"auth\",\"token\":\"$BOB\"}" --wait 1 --timeout 20
wait_until 5 grep -q authenticated "$T/bb2.out"
jobs_before=$(jobs_added)
r=$(http POST /api/broadcast -H "$J" -H "$(bearer "$ALICE")" -d '{"content":"to all from alice"}')
expect_match "POST /api/broadcast without \"admin\": true is 403" '^403 \{"code":403,"message":".+"\}$' "$r"
r=$(http POST /api/broadcast -H "$J" -H "$(bearer "$(jwt_with "$HS" '{"sub":"alice","exp":9999999999,"admin":false}')")" -d '{"content":"to all from alice"}')
expect_match "... with \"admin\": false too" '^403 ' "$r"
r=$(http POST /api/broadcast -H "$J" -H "$(bearer "$(jwt_with "$HS" '{"sub":"alice","exp":9999999999,"admin":"true"}')")" -d '{"content":"to all from alice"}')
expect_match "... and with \"admin\": \"true\" (a string)" '^403 ' "$r"
expect_eq "refused broadcasts queue nothing" "$jobs_before" "$(jobs_added)"
listen stranger "$WS2" --timeout 60   # (closed after ws_auth_timeout, 5 s: opened just now)
r=$(http POST /api/broadcast -H "$J" -H "$(bearer "$ADMIN")" -d '{"content":"to all from root"}')
expect_match "POST /api/broadcast by an admin is 200" '^200 \{"code":200,"message":"[^"]*","id":"[0-9]+-[0-9]+"\}$' "$r"
bcast1=$(printf '%s' "$r" | id_of)
for n in ba1 ba2 bb1 bb2; do
    wait "$(pid_of "$n")"
    expect_eq "the broadcast reaches $n" "$bcast1" "$(done_ids "$T/$n.out")"
done
expect_eq "... with its text" '"Echo: to all from root"' "$(grep '"type":"text"' "$T/ba2.out" | sed 's/.*"content":\("[^"]*"\).*/\1/')"
check "(the unauthenticated socket was still open then)" sh -c "! grep -q '^# closed' $T/stranger.out"
wait_until 10 grep -q '# closed' "$T/stranger.out"
expect_eq "an unauthenticated socket gets none of it" "" "$(grep '^{' "$T/stranger.out" | grep -v '"code":401')"

# -- 7. token expiry, the auth timeout
note "7. token expiry"
wait_until $((started + 8 - $(date +%s))) grep -q '# closed' "$T/shortlived.out"
expect_match "a socket whose token expired: error 401" '^\{"type":"error","code":401,"content":"[^"]+"\}$' "$(grep '"type":"error"' "$T/shortlived.out")"
check "... then close 1008" grep -q '^# closed 1008' "$T/shortlived.out"
check "... after it had been let in" grep -q '^{"type":"authenticated","user":"carol"' "$T/shortlived.out"
wait_until 5 grep -q '# closed' "$T/shortframe.out"
# (the admin's broadcast reaches it too when its token had not expired by then)
expect_match "authenticated by an auth frame, the same on expiry" '^# connected \{"type":"error","code":401,.*# closed 1008 ' "$(grep -v '"type":"authenticated"' "$T/shortframe.out" | grep -v "\"id\":\"$bcast1\"" | tr '\n' ' ')"
expect_match "no auth frame within ws_auth_timeout: error 401" '^\{"type":"error","code":401,"content":"[^"]+"\}$' "$(grep '"type":"error"' "$T/silent.out")"
check "... then close 1008" grep -q '^# closed 1008' "$T/silent.out"
expect_eq "... and nothing else" 1 "$(grep -c '^{' "$T/silent.out")"
sleep $((started + 5 - $(date +%s))) 2> /dev/null
check "a socket that sent a fresh token in time stays open" sh -c "! grep -q '^# closed' $T/renewed.out"
expect_eq "... authenticated twice" 2 "$(grep -c '^{"type":"authenticated","user":"carol"' "$T/renewed.out")"
id=$(post "$(token carol)" 'still there?' | id_of)
check "... and gets its user's answers" wait_until 10 grep -q "^{\"type\":\"done\",\"id\":\"$id\"" "$T/renewed.out"
stop renewed
check "... but the expired ones got none" sh -c "! grep -q '$id' $T/shortlived.out $T/shortframe.out"
out=$(wsclient --url "$WS1?token=$ALICE" --send "{\"type\":\"auth\",\"token\":\"$BOB\"}" --send '{"type":"text","content":"who am I"}' --wait 1 --timeout 10)
expect_match "an auth frame for another user is refused" '^\{"type":"error",' "$(printf '%s\n' "$out" | grep '^{' | sed -n 2p)"
expect_eq "... the socket stays its first user's" 1 "$(printf '%s\n' "$out" | grep -c '"type":"authenticated"')"
expect_match "... and goes on being answered" '^\{"type":"done"' "$(printf '%s\n' "$out" | grep '^{' | tail -1)"

# ==== 3. a user's sockets on two instances share the answers =====================
note "3. a user"
DAVE=$(token dave)
listen d1 "$WS1?token=$DAVE" --wait 1 --timeout 20
wsclient --url "$WS2?token=$DAVE" --send '{"type":"text","content":"for both of mine"}' --wait 1 --timeout 20 > "$T/d2.out"
wait "$(pid_of d1)"
did=$(grep '^{"type":"queued"' "$T/d2.out" | id_of)
expect_match "the asking socket gets queued" '^[0-9]+-[0-9]+$' "$did"
expect_eq "... and the answer" "$did" "$(done_ids "$T/d2.out")"
expect_eq "the user's socket on the other instance gets it too" "$did" "$(done_ids "$T/d1.out")"
expect_eq "... with the text" '"Echo: for both of mine"' "$(grep '"type":"text"' "$T/d1.out" | sed 's/.*"content":\("[^"]*"\).*/\1/')"
check "... but not the queued frame" sh -c "! grep -q '\"type\":\"queued\"' $T/d1.out"

# ==== 8. another user's answer does not exist for a user ==========================
note "8. another"
slow='slow @@tokens=60 @@delay=100'     # 6 s
listen oa "$WS1?token=$ALICE" --wait 1 --timeout 30
listen ob "$WS2?token=$BOB" --timeout 60
aid=$(post "$ALICE" "$slow" | id_of)
wait_until 10 sh -c "curl -s -H '$(bearer "$ALICE")' $API/api/answer/$aid | grep -q '\"status\":\"streaming\"'"
unknown=$(http GET /api/answer/1-0 -H "$(bearer "$BOB")")
expect_match "(GET /api/answer/<unknown id> is 404)" '^404 ' "$unknown"
expect_eq "B cannot GET A's answer: the same 404 as an unknown id" "$unknown" "$(http GET "/api/answer/$aid" -H "$(bearer "$BOB")")"
out=$(wsclient --url "$WS2?token=$BOB" --send "{\"type\":\"cancel\",\"id\":\"$aid\"}" --send "{\"type\":\"resume\",\"id\":\"$aid\",\"after\":-1}" --timeout 1.5)
expect_eq "B can neither cancel nor resume it over a socket: an error frame each, as for an unknown id" 2 \
    "$(printf '%s\n' "$out" | grep -c "^{\"type\":\"error\",\"content\":\"没有这个回答 [^\"]*: $aid\"}\$")"
expect_eq "... and gets none of its frames" 0 "$(printf '%s\n' "$out" | grep -c "\"type\":\"text\",\"id\":\"$aid\"")"
expect_match "A can GET it" "^200 \\{\"id\":\"$aid\",\"status\":\"streaming\"" "$(http GET "/api/answer/$aid" -H "$(bearer "$ALICE")")"
expect_match "an admin can GET it" "^200 \\{\"id\":\"$aid\"," "$(http GET "/api/answer/$aid" -H "$(bearer "$ADMIN")")"
listen ar "$WS2?token=$ALICE" --send "{\"type\":\"resume\",\"id\":\"$aid\",\"after\":-1}" --wait 1 --timeout 15
# (while it streams: a refused cancel must not stop it either)
expect_match "B cannot cancel it over HTTP: 404" '^404 \{"code":404,"message":"[^"]*no such answer' \
    "$(http POST /api/cancel -H "$(bearer "$BOB")" -d "{\"id\":\"$aid\"}")"
texts() { grep "\"type\":\"text\",\"id\":\"$2\"" "$1" | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n' | wc -w; }
wait "$(pid_of ar)"
expect_eq "A can resume it on the other instance: all of it, to its end" "$aid 60" "$(done_ids "$T/ar.out") $(texts "$T/ar.out" "$aid")"
wait "$(pid_of oa)"
expect_eq "A's answer came whole to A's socket, B's cancels notwithstanding" "$aid 60" "$(done_ids "$T/oa.out") $(texts "$T/oa.out" "$aid")"
stop ob
expect_eq "B's socket got nothing of it" 0 "$(grep -c "$aid" "$T/ob.out")"
# an admin may read anyone's answer: resuming it must not take it from its user's sockets
listen oc "$WS1?token=$ALICE" --wait 1 --timeout 10
aid=$(post "$ALICE" 'slow @@tokens=30 @@delay=100' | id_of)
wait_until 10 sh -c "curl -s -H '$(bearer "$ALICE")' $API/api/answer/$aid | grep -q '\"status\":\"streaming\"'"
wsclient --url "$WS1?token=$ADMIN" --send "{\"type\":\"resume\",\"id\":\"$aid\",\"after\":-1}" --wait 1 --timeout 15 > "$T/adm.out"
expect_eq "an admin can resume A's answer: all of it" "$aid 30" "$(done_ids "$T/adm.out") $(texts "$T/adm.out" "$aid")"
wait "$(pid_of oc)"
expect_eq "... and A's socket on the same instance still gets all of it" "$aid 30" "$(done_ids "$T/oc.out") $(texts "$T/oc.out" "$aid")"
# A cancels A's own (over HTTP and over a socket)
aid=$(post "$ALICE" "$slow" | id_of)
wait_until 10 sh -c "curl -s -H '$(bearer "$ALICE")' $API/api/answer/$aid | grep -q '\"status\":\"streaming\"'"
expect_match "A can cancel A's answer over HTTP" '^200 ' "$(http POST /api/cancel -H "$(bearer "$ALICE")" -d "{\"id\":\"$aid\"}")"
aid=$(post "$ALICE" "$slow" | id_of)
out=$(wsclient --url "$WS1?token=$ALICE" --send "{\"type\":\"cancel\",\"id\":\"$aid\"}" --wait 1 --timeout 10)
expect_match "... and over a socket" "^\\{\"type\":\"cancelled\",\"id\":\"$aid\"" "$(printf '%s\n' "$out" | grep "\"id\":\"$aid\"" | tail -1)"
# an answer to everyone: anyone reads it, only an admin cancels it
bid=$(http POST /api/broadcast -H "$J" -H "$(bearer "$ADMIN")" -d "{\"content\":\"$slow\"}" | id_of)
bcast2=$bid
wait_until 10 sh -c "curl -s -H '$(bearer "$BOB")' $API/api/answer/$bid | grep -q '\"status\":\"streaming\"'"
expect_match "B can GET an answer to everyone" "^200 \\{\"id\":\"$bid\",\"status\":\"streaming\"" "$(http GET "/api/answer/$bid" -H "$(bearer "$BOB")")"
out=$(wsclient --url "$WS2?token=$BOB" --send "{\"type\":\"resume\",\"id\":\"$bid\",\"after\":-1}" --timeout 1)
expect_match "... and resume it" "\"type\":\"text\",\"id\":\"$bid\",\"seq\":0," "$out"
expect_match "B cannot cancel it over HTTP: 404" '^404 ' "$(http POST /api/cancel -H "$(bearer "$BOB")" -d "{\"id\":\"$bid\"}")"
out=$(wsclient --url "$WS2?token=$BOB" --send "{\"type\":\"cancel\",\"id\":\"$bid\"}" --timeout 1)
expect_match "... nor over a socket" "^\\{\"type\":\"error\",\"content\":\"没有这个回答 [^\"]*: $bid\"\\}\$" "$(printf '%s\n' "$out" | grep '^{' | sed -n 2p)"
expect_match "an admin can cancel it" '^200 ' "$(http POST /api/cancel -H "$(bearer "$ADMIN")" -d "{\"id\":\"$bid\"}")"

# ==== 2. 1,000 answers to two users: each to the user's sockets, nobody else's =====
note "2. isolation"
fire() {        # fire TOKEN N CONTENT: N POST /api/message at once; the response bodies, one a line
    yes "url = \"$API/api/message\"" | head -n "$2" > "$T/urls"
    curl -s --no-progress-meter --parallel --parallel-max 20 -X POST -H "$J" -H "$(bearer "$1")" -d "{\"content\":\"$3\"}" -K "$T/urls" |
        grep -o '{"code":[^}]*}'
}
for n in ia1 ib1; do listen "$n" "$WS1?token=$( [ $n = ia1 ] && echo "$ALICE" || echo "$BOB")" --wait 500 --timeout 60; done
listen ia2 "$WS2?token=$ALICE" --wait 500 --timeout 60
listen ib2 "$WS2" --send "{\"type\":\"auth\",\"token\":\"$BOB\"}" --wait 500 --timeout 60
status_is() { curl -s -H "$(bearer "$ALICE")" "$API/api/status" | grep -q "^{\"status\":\"ok\",\"connectionCount\":$1,\"userConnectionCount\":$2,"; }
check "GET /api/status counts all sockets (6) and the caller's own on both instances (2)" wait_until 5 status_is 6 2
fire "$ALICE" 500 'q' > "$T/alice.posted" &
fa=$!
fire "$BOB" 500 'q' > "$T/bob.posted"
wait "$fa"
expect_eq "500 questions of A accepted" 500 "$(grep -c '"code":200' "$T/alice.posted")"
expect_eq "500 questions of B accepted" 500 "$(grep -c '"code":200' "$T/bob.posted")"
id_of_each() { sed -n 's/.*"id":"\([0-9]*-[0-9]*\)".*/\1/p' "$1" | sort; }
id_of_each "$T/alice.posted" > "$T/alice.ids"
id_of_each "$T/bob.posted" > "$T/bob.ids"
for n in ia1 ia2 ib1 ib2; do wait "$(pid_of "$n")"; done
note "answered"
for n in ia1 ia2; do
    expect_eq "A's socket $n got exactly A's 500 answers" "$(cat "$T/alice.ids")" "$(done_ids "$T/$n.out")"
done
for n in ib1 ib2; do
    expect_eq "B's socket $n got exactly B's 500 answers" "$(cat "$T/bob.ids")" "$(done_ids "$T/$n.out")"
done
expect_eq "no frame of B's answers on A's sockets" 0 "$(cat "$T/ia1.out" "$T/ia2.out" | grep -o '"id":"[0-9-]*"' | sed 's/"id":"\(.*\)"/\1/' | sort -u | comm -12 - "$T/bob.ids" | wc -l)"
expect_eq "no frame of A's answers on B's sockets" 0 "$(cat "$T/ib1.out" "$T/ib2.out" | grep -o '"id":"[0-9-]*"' | sed 's/"id":"\(.*\)"/\1/' | sort -u | comm -12 - "$T/alice.ids" | wc -l)"
stop eve1; stop eve2
expect_eq "a third user's sockets on both instances got what went to everyone, nothing else" \
    "$(printf '%s\n' "$bcast1" "$bcast2" "$bcast1" "$bcast2" | sort)" \
    "$(for n in eve1 eve2; do grep -o '"id":"[0-9-]*"' "$T/$n.out" | cut -d'"' -f4 | sort -u; done | sort)"

# ==== 4. quotas, exact under concurrency ===========================================
# 200 questions at once: 100 over HTTP (two fcgi-api processes), 50 over a
# socket on each ws-push instance
note "4. quotas: rate"
settings "rate_messages_per_minute: 50" "ws_max_connections_per_user: 2"
restart_all
sends() { i=0; while [ "$i" -lt "$1" ]; do printf -- '--send\n%s\n' "$2"; i=$((i + 1)); done; }
burst() {       # burst TOKEN CONTENT DONE: 2 sockets x 50 + 100 HTTP at once; $T/burst.{ws1,ws2,http,heads}
                # once each socket has its 50 replies and seen DONE answers end
    sends 50 "{\"type\":\"text\",\"content\":\"$2\"}" > "$T/sends"
    mapfile -t sendargs < "$T/sends"
    # the sockets are let in first (each is to get every answer); they send
    # at the time the HTTP requests go (curl takes a moment to start)
    at=$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.3f", t + 2 }')
    "$BIN/wsclient" --url "$WS1?token=$1" "${sendargs[@]}" --start-at "$at" --timeout 60 > "$T/burst.ws1" &
    w1=$!
    "$BIN/wsclient" --url "$WS2?token=$1" "${sendargs[@]}" --start-at "$at" --timeout 60 > "$T/burst.ws2" &
    w2=$!
    wait_until 10 grep -q '"type":"authenticated"' "$T/burst.ws1"
    wait_until 10 grep -q '"type":"authenticated"' "$T/burst.ws2"
    yes "url = \"$API/api/message\"" | head -n 100 > "$T/urls"
    sleep "$(awk -v at="$at" -v t="$(date +%s.%N)" 'BEGIN { d = at - t - 0.3; printf "%.3f", (d > 0 ? d : 0) }')"
    curl -s --no-progress-meter --parallel --parallel-max 50 -X POST -H "$J" -H "$(bearer "$1")" \
        -d "{\"content\":\"$2\"}" -D "$T/burst.heads" -K "$T/urls" | grep -o '{"code":[^}]*}' > "$T/burst.http"
    burst_done=$3
    wait_until 30 burst_settled
    kill "$w1" "$w2" 2> /dev/null
    wait "$w1" "$w2" 2> /dev/null
}
burst_settled() {
    for f in "$T/burst.ws1" "$T/burst.ws2"; do
        [ "$(grep -c '^{"type":"queued"\|^{"type":"error","code":429' "$f")" -ge 50 ] &&
            [ "$(grep -c '^{"type":"done"' "$f")" -ge "$burst_done" ] || return 1
    done
}
accepted() { echo $(( $(grep -c '"code":200' "$T/burst.http") + $(cat "$T/burst.ws1" "$T/burst.ws2" | grep -c '^{"type":"queued"') )); }
refused() { echo $(( $(grep -c '"code":429' "$T/burst.http") + $(cat "$T/burst.ws1" "$T/burst.ws2" | grep -c '^{"type":"error","code":429,') )); }
RITA=$(token rita)
jobs_before=$(jobs_added)
burst "$RITA" 'r' 50
note "accepted over ws1, ws2, HTTP: $(grep -c '^{"type":"queued"' "$T/burst.ws1") $(grep -c '^{"type":"queued"' "$T/burst.ws2") $(grep -c '"code":200' "$T/burst.http")"
expect_eq "rate_messages_per_minute 50, 200 at once: 50 accepted" 50 "$(accepted)"
expect_eq "... 150 refused with 429" 150 "$(refused)"
expect_eq "... and 50 queued" $((jobs_before + 50)) "$(jobs_added)"
expect_eq "every HTTP 429 says Retry-After" "$(grep -c '"code":429' "$T/burst.http")" "$(grep -ci '^Retry-After: [0-9]' "$T/burst.heads")"
check "both fcgi-api processes took part" sh -c "[ \$(grep -h '429 POST /api/message for user:rita' $T/logs/*.log | grep -o 'fcgi-api\[[0-9]*\]' | sort -u | wc -l) = 2 ]"
{ grep -o '"id":"[0-9-]*"' "$T/burst.http"; cat "$T/burst.ws1" "$T/burst.ws2" | grep '^{"type":"queued"' | grep -o '"id":"[0-9-]*"'; } | cut -d'"' -f4 | sort > "$T/rita.ids"
expect_eq "each of the user's sockets got the 50 answers" "$(cat "$T/rita.ids") $(cat "$T/rita.ids")" "$(done_ids "$T/burst.ws1") $(done_ids "$T/burst.ws2")"
r=$(curl -s -D "$T/h429" -X POST "$API/api/message" -H "$J" -H "$(bearer "$RITA")" -d '{"content":"one more"}')
expect_match "the next one: 429 JSON" '^\{"code":429,"message":".+"\}$' "$r"
expect_match "... Retry-After: when the oldest of the minute leaves it" '^Retry-After: ([1-9]|[1-5][0-9]|60)$' "$(grep -i '^Retry-After' "$T/h429" | tr -d '\r')"
expect_eq "another user is not limited by it" 200 "$(post "$DAVE" 'mine' | cut -c1-3)"

note "4. quotas: sockets"
CONNIE=$(token connie)
listen c1 "$WS1?token=$CONNIE" --timeout 30
listen c2 "$WS1?token=$CONNIE" --timeout 30
wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT ZCARD ${REDIS_PREFIX}conns:user:connie) = 2 ]"
expect_eq "ws_max_connections_per_user 2: a third socket on the same instance is refused: 429" 429 "$(handshake "$WS_PORT_ws1" "?token=$CONNIE")"
out=$(wsclient --url "$WS1" --send "{\"type\":\"auth\",\"token\":\"$CONNIE\"}" --timeout 5)
expect_match "... or, by an auth frame, error 429 and close 1008" '^# connected \{"type":"error","code":429,"content":"[^"]+"\} # closed 1008 ' "$(printf '%s\n' "$out" | tr '\n' ' ')"
out=$(wsclient --url "$WS2?token=$CONNIE" --timeout 5)
expect_match "on the other instance: error 429 then close 1008" '\{"type":"error","code":429,"content":"[^"]+"\} # closed 1008 ' "$(printf '%s\n' "$out" | tr '\n' ' ')"
expect_match "GET /api/status: the user's 2 sockets" '"userConnectionCount":2,' "$(http GET /api/status -H "$(bearer "$CONNIE")")"
stop c1
wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT ZCARD ${REDIS_PREFIX}conns:user:connie) = 1 ]"
listen c3 "$WS2?token=$CONNIE" --timeout 30
sleep 1
check "after one closed, a new one is let in and stays" sh -c "grep -q '\"type\":\"authenticated\"' $T/c3.out && ! grep -q '^# closed' $T/c3.out"
stop c2; stop c3
# 20 at once, 10 on each instance
wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT ZCARD ${REDIS_PREFIX}conns:user:connie) = 0 ]"
pids=""
for i in $(seq 1 20); do
    "$BIN/wsclient" --url "$( [ $((i % 2)) = 0 ] && echo "$WS1" || echo "$WS2")?token=$CONNIE" --timeout 30 > "$T/many$i.out" 2>&1 &
    pids="$pids $!"
done
refused_now() { grep -l '^# connection failed\|^# closed' "$T"/many*.out | wc -l; }
all_but_two_refused() { [ "$(refused_now)" -ge 18 ]; }
wait_until 20 all_but_two_refused
sleep 1     # (a late refusal would show)
expect_eq "20 sockets at once over two instances: 18 refused (429 at the handshake, or error 429 + 1008)" 18 "$(refused_now)"
expect_eq "... 2 let in" 2 "$(grep -L '^# connection failed\|^# closed' "$T"/many*.out | xargs grep -l '^{"type":"authenticated"' | wc -l)"
expect_eq "... and counted in Redis" 2 "$(rcli ZCARD "${REDIS_PREFIX}conns:user:connie")"
kill $pids 2> /dev/null
wait $pids 2> /dev/null

note "4. quotas: answers in flight"
settings "max_answers_in_flight_per_user: 3"
restart_all
IVY=$(token ivy)
jobs_before=$(jobs_added)
burst "$IVY" 'slow @@tokens=600 @@delay=100' 0      # 60 s answers
expect_eq "max_answers_in_flight_per_user 3, 200 slow ones at once: 3 accepted" 3 "$(accepted)"
expect_eq "... 197 refused with 429" 197 "$(refused)"
expect_eq "... and 3 queued" $((jobs_before + 3)) "$(jobs_added)"
expect_eq "every HTTP 429 says Retry-After" "$(grep -c '"code":429' "$T/burst.http")" "$(grep -ci '^Retry-After: [0-9]' "$T/burst.heads")"
{ grep -o '"id":"[0-9-]*"' "$T/burst.http"; cat "$T/burst.ws1" "$T/burst.ws2" | grep '^{"type":"queued"' | grep -o '"id":"[0-9-]*"'; } | cut -d'"' -f4 | sort -u > "$T/ivy.ids"
r=$(curl -s -D "$T/h429" -X POST "$API/api/message" -H "$J" -H "$(bearer "$IVY")" -d '{"content":"a fourth"}')
expect_match "a 4th while 3 stream: 429" '^\{"code":429,"message":".+"\}$' "$r"
check "... with Retry-After" grep -qi '^Retry-After: [1-9]' "$T/h429"
out=$(wsclient --url "$WS2?token=$IVY" --send '{"type":"text","content":"a fourth"}' --timeout 2)
expect_match "... over a socket: error 429" '^\{"type":"error","code":429,"content":".+"\}$' "$(printf '%s\n' "$out" | grep '^{' | sed -n 2p)"
expect_match "cancelling one of them" '^200 ' "$(http POST /api/cancel -H "$(bearer "$IVY")" -d "{\"id\":\"$(sed -n 1p "$T/ivy.ids")\"}")"
r=$(post "$IVY" 'after a cancel @@tokens=30 @@delay=100')
expect_match "... makes room for one more" '^200 ' "$r"
expect_match "... and only one" '^429 ' "$(post "$IVY" 'one too many')"
check "(that one ends by itself)" wait_until 15 answer_ended "$IVY" "$(printf '%s' "$r" | id_of)"
expect_match "an answer that ended makes room for one more" '^200 ' "$(post "$IVY" 'after an end')"
for id in $(sed -n 2,3p "$T/ivy.ids"); do http POST /api/cancel -H "$(bearer "$IVY")" -d "{\"id\":\"$id\"}" > /dev/null; done
expect_match "another user is not limited by it" '^200 ' "$(post "$DAVE" 'mine')"

# ==== 6. without authentication: the client address, from trusted proxies only ====
note "6. X-Forwarded-For"
plain_settings() { printf '%s\n' "rate_messages_per_minute: 2" "ws_max_connections_per_user: 5" "$@" > "$CONFIG"; }
ask() {         # ask [curl args]: the status of POST /api/message without a token
    http POST /api/message -H "$J" -d '{"content":"from afar"}' "$@" | cut -c1-3
}
zcard() { rcli ZCARD "${REDIS_PREFIX}$1"; }
plain_settings
restart_all
XFF='X-Forwarded-For: 203.0.113.7'
expect_eq "auth off: no token needed" 200 "$(ask -H "$XFF")"
expect_eq "... a 2nd from the same forwarded address" 200 "$(ask -H "$XFF")"
expect_eq "rate_messages_per_minute 2 per address: the 3rd is 429" 429 "$(ask -H "$XFF")"
expect_eq "the quota is the forwarded address's (P rate:addr:203.0.113.7)" 2 "$(zcard rate:addr:203.0.113.7)"
expect_eq "... not the proxy's" 0 "$(rcli EXISTS "${REDIS_PREFIX}rate:addr:127.0.0.1")"
expect_eq "another forwarded address has its own" 200 "$(ask -H 'X-Forwarded-For: 203.0.113.8')"
expect_eq "X-Forwarded-For is read right to left: what a client wrote first is not believed" 429 \
    "$(ask -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.7')"
expect_eq "... (198.51.100.1 was not counted)" 0 "$(rcli EXISTS "${REDIS_PREFIX}rate:addr:198.51.100.1")"
out=$(wsclient --url "$WS1" --header 'X-Forwarded-For: 192.0.2.44' --send '{"type":"text","content":"a"}' \
    --send '{"type":"text","content":"b"}' --send '{"type":"text","content":"c"}' --wait 2 --timeout 10)
expect_eq "ws-push: the forwarded address's quota too (2 queued, then 429)" "queued queued 429" \
    "$(printf '%s\n' "$out" | sed -n 's/^{"type":"queued".*/queued/p; s/^{"type":"error","code":\([0-9]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//')"
expect_eq "... under P rate:addr:192.0.2.44" 2 "$(zcard rate:addr:192.0.2.44)"
listen xa "$WS2" --header 'X-Forwarded-For: 192.0.2.45' --timeout 30
check "... and its socket is counted under P conns:addr:192.0.2.45" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT ZCARD ${REDIS_PREFIX}conns:addr:192.0.2.45) = 1 ]"
stop xa

# a proxy not in trusted_proxies: its X-Forwarded-For is ignored
plain_settings "trusted_proxies: 10.0.0.0/8"
restart_all
expect_eq "an untrusted peer's X-Forwarded-For is ignored" 200 "$(ask -H 'X-Forwarded-For: 203.0.113.99')"
expect_eq "... the quota is the peer's (P rate:addr:127.0.0.1)" 1 "$(zcard rate:addr:127.0.0.1)"
expect_eq "... not the address it claims" 0 "$(rcli EXISTS "${REDIS_PREFIX}rate:addr:203.0.113.99")"
ask -H 'X-Forwarded-For: 203.0.113.100' > /dev/null
expect_eq "... so claiming yet another address does not help" 429 "$(ask -H 'X-Forwarded-For: 203.0.113.101')"
out=$(wsclient --url "$WS1" --header 'X-Forwarded-For: 192.0.2.55' --send '{"type":"text","content":"a"}' --timeout 3)
expect_match "ws-push: the same (the peer's quota is used up)" '^\{"type":"error","code":429,' \
    "$(printf '%s\n' "$out" | grep '^{"type":"\(queued\|error\)"' | head -1)"
expect_eq "... nothing under the claimed address" 0 "$(rcli EXISTS "${REDIS_PREFIX}rate:addr:192.0.2.55")"

# ==== 5. the Origin allowlist ======================================================
note "5. Origin"
start_wspush ws3 --ws-allowed-origins 'https://app.example.com,*.example.org,http://127.0.0.1:8080' --rate-messages-per-minute 0
origin() { handshake "$WS_PORT_ws3" '' "Origin: $1"; }
expect_eq "an allowed origin: 101" 101 "$(origin https://app.example.com)"
expect_eq "... with its default port written" 101 "$(origin https://app.example.com:443)"
expect_eq "... with a port given in the list" 101 "$(origin http://127.0.0.1:8080)"
expect_eq "another origin: 403" 403 "$(origin https://evil.example.com)"
expect_match "... a JSON error" '^\{"code":403,"message":".+"\}$' "$(cat "$T/hs.body")"
expect_eq "the same host by another scheme: 403" 403 "$(origin http://app.example.com)"
expect_eq "the same host on another port: 403" 403 "$(origin https://app.example.com:8443)"
expect_eq "a look-alike host: 403" 403 "$(origin https://app.example.com.evil.net)"
expect_eq "userinfo trickery: 403" 403 "$(origin https://app.example.com@evil.net)"
expect_eq "a wildcard entry: a subdomain 101" 101 "$(origin https://chat.example.org)"
expect_eq "... a deeper one 101" 101 "$(origin http://a.b.example.org:3000)"
expect_eq "... not the domain itself: 403" 403 "$(origin https://example.org)"
expect_eq "... not a look-alike: 403" 403 "$(origin https://evilexample.org)"
expect_eq "Origin null: 403 (not in the list)" 403 "$(origin null)"
expect_eq "no Origin: allowed (not a browser)" 101 "$(handshake "$WS_PORT_ws3" '')"
out=$(wsclient --url "ws://127.0.0.1:$WS_PORT_ws3/ws" --origin https://chat.example.org --send '{"type":"text","content":"from a page"}' --wait 1 --timeout 10)
expect_match "a socket from an allowed page is answered" '^\{"type":"done"' "$(printf '%s\n' "$out" | grep '^{' | tail -1)"
out=$(wsclient --url "ws://127.0.0.1:$WS_PORT_ws3/ws" --origin https://evil.example.com --timeout 5 2>&1)
expect_match "a socket from another page never opens" '^# connection failed' "$out"
check "ws1 has no allowlist: any origin" test "$(handshake "$WS_PORT_ws1" '' 'Origin: https://evil.example.com')" = 101

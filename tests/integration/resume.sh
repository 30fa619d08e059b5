# Answers that survive: resume an answer from any seq, on any ws-push
# instance, while it streams and after it ended; fetch it by id over HTTP;
# cancel it while queued, streaming, done, unknown, from another instance.
. "$(dirname "$0")/../lib.sh"

export WORKER_CLAIM_IDLE_MS=1500
start_redis
STANDIN_DELAY_MS=10 LOG_LEVEL=debug start_standin
start_worker w1
LOG_LEVEL=debug start_wspush ws1
LOG_LEVEL=debug start_wspush ws2
start_lighttpd
WS1="ws://127.0.0.1:$WS_PORT_ws1/ws"
WS2="ws://127.0.0.1:$WS_PORT_ws2/ws"

post() {    # post CONTENT: prints the job id
    http POST /api/message -H 'Content-Type: application/json' -d "{\"content\":\"$1\"}" |
        sed 's/.*"id":"\([^"]*\)".*/\1/'
}
resume() {  # resume URL ID AFTER [wsclient args]: the frames, one per line
    url=$1 id=$2 after=$3; shift 3
    wsclient --url "$url" --send "{\"type\":\"resume\",\"id\":\"$id\",\"after\":$after}" "$@"
}
seqs() { grep "\"id\":\"$2\"" "$1" | sed 's/.*"seq":\([0-9]*\).*/\1/' | tr '\n' ' '; }
text_of() { grep '"type":"text"' "$1" | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n'; }
count_up() { i=$1; while [ "$i" -le "$2" ]; do printf '%s ' "$i"; i=$((i + 1)); done; }
full() { i=0; while [ "$i" -lt "$1" ]; do printf 'tok%s' "$i"; [ "$i" -lt $(($1 - 1)) ] && printf ' '; i=$((i + 1)); done; }
# the seq of an answer's last frame (tokens read together make one frame)
last_seq() { curl -s "$API/api/answer/$1" | sed 's/.*"seq":\(-*[0-9]*\).*/\1/'; }
ended() { curl -s "$API/api/answer/$1" | grep -q '"status":"\(done\|error\|cancelled\)"'; }
# frames of answer $2 in $1 after a resume from $3 up to $4: a first run may
# have come live before the resume was read; then exactly the rest, once.
# Prints what is wrong, nothing when all is well.
resumed_right() {
    grep "\"id\":\"$2\"" "$1" | sed 's/.*"seq":\([0-9]*\).*/\1/' |
        awk -v from="$3" -v last="$4" '
            { s[NR] = $1; if (count[$1]++) print "seq " $1 " twice" }
            END {
                k = NR ? 1 : 0
                while (k < NR && s[k + 1] == s[k] + 1) k++
                for (i = 1; i <= k; i++) live[s[i]] = 1
                j = k + 1
                for (v = from + 1; v <= last; v++) {
                    if (v in live) continue
                    if (j > NR || s[j] != v) { print "seq " v " due, got " (j > NR ? "nothing" : s[j]); exit }
                    j++
                }
                if (j <= NR) print "seq " s[j] " after the last"
            }'
}

# -- every seq position of a finished 50-chunk answer
id=$(post "fifty @@tokens=50 @@delay=5")
wait_until 20 ended "$id"
n=$(last_seq "$id")
check "the 50-token answer came in many frames" test "$n" -ge 25
bad=""
after=-1
while [ "$after" -le "$n" ]; do
    wait_s=10
    [ "$after" = "$n" ] && wait_s=1 # nothing comes after the end
    resume "$WS1" "$id" "$after" --wait 1 --timeout "$wait_s" > "$T/r.out"
    want="$(count_up $((after + 1)) "$n")"
    [ "$after" = "$n" ] && want=""
    got=$(seqs "$T/r.out" "$id")
    [ "$got" = "$want" ] || bad="$bad after=$after:[$got]"
    after=$((after + 1))
done
[ -n "$bad" ] || [ "$(resume "$WS1" "$id" 10 --wait 1 --timeout 10 | grep -c '"type":"done"')" = 1 ] || bad="no done"
expect_eq "resume from every seq of a 50-token answer gives exactly the frames after it" "" "$bad"
resume "$WS2" "$id" $((n - 3)) --wait 1 --timeout 10 > "$T/r.out"
expect_eq "resume on the other instance after the end" "$(count_up $((n - 2)) "$n")" "$(seqs "$T/r.out" "$id")"
expect_match "... with the text of those frames" '"content":"[^"]*tok49"' "$(grep '"type":"text"' "$T/r.out" | tail -1)"

r=$(http GET "/api/answer/$id")
expect_eq "GET /api/answer/<id> of a finished answer" "200 {\"id\":\"$id\",\"status\":\"done\",\"content\":\"$(full 50)\",\"seq\":$n}" "$r"
expect_match "GET /api/answer of an unknown id is 404" '^404 .*no such answer' "$(http GET /api/answer/1-0)"
expect_match "GET /api/answer of a malformed id is 400" '^400 ' "$(http GET /api/answer/x1)"

# -- an answer to one socket, which goes away mid-answer; resumed elsewhere
wsclient --url "$WS1" --send '{"type":"text","content":"mine @@tokens=80 @@delay=20"}' --timeout 0.5 > "$T/first.out"
sid=$(grep '"type":"queued"' "$T/first.out" | sed 's/.*"id":"\([^"]*\)".*/\1/')
last=$(grep '"type":"text"' "$T/first.out" | tail -1 | sed 's/.*"seq":\([0-9]*\).*/\1/')
check "the first socket got part of its answer" test "${last:-0}" -ge 1 -a "${last:-80}" -lt 79
r=$(http GET "/api/answer/$sid")
expect_match "GET /api/answer while it streams" "^200 \\{\"id\":\"$sid\",\"status\":\"streaming\",\"content\":\"tok0 " "$r"
resume "$WS2" "$sid" "$last" --wait 1 --timeout 20 > "$T/second.out"
expect_eq "resumed on the other instance: the rest, in order, ending done" "$(count_up $((last + 1)) "$(last_seq "$sid")")" "$(seqs "$T/second.out" "$sid")"
expect_eq "both parts make the whole answer" "$(full 80)" "$(text_of "$T/first.out")$(text_of "$T/second.out")"

# -- resume while the answer streams: 100 clients, each from its own seq
id=$(post "long @@tokens=400 @@delay=15")
wait_until 10 sh -c "curl -s $API/api/answer/$id | grep -q '\"status\":\"streaming\"'"
n=0 clients=""
for wave in 1 2 3 4; do
    for k in $(seq 1 25); do
        n=$((n + 1))
        from=$(( (RANDOM % 200) - 1 ))
        url=$WS1
        [ $((n % 2)) = 0 ] && url=$WS2
        echo "$from" > "$T/live$n.from"
        resume "$url" "$id" "$from" --wait 1 --timeout 60 > "$T/live$n.out" &
        clients="$clients $!"
    done
    sleep 1
done
for p in $clients; do wait "$p"; done
last=$(last_seq "$id")
bad=""
for i in $(seq 1 $n); do
    from=$(cat "$T/live$i.from")
    why=$(resumed_right "$T/live$i.out" "$id" "$from" "$last")
    # what else it got (an error frame, a close) says why
    [ -z "$why" ] || bad="$bad #$i(after $from: $(echo $why | head -c 80); $(grep -v "\"id\":\"$id\"" "$T/live$i.out" | head -c 200))"
done
expect_eq "$n resumes while streaming: no gap, no duplicate" "" "$bad"
[ -z "$bad" ] || grep -h "WARN\|ERROR" "$T"/ws1.out "$T"/ws2.out | tail -20

# -- a client that had the answer's end live before its resume went out
id=$(post "late @@tokens=100 @@delay=30")
wait_until 10 sh -c "[ \$(curl -s $API/api/answer/$id | sed 's/.*\"seq\":\(-*[0-9]*\).*/\1/') -ge 10 ]"
resume "$WS1" "$id" 2 --wait 1 --timeout 20 --start-at "$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.3f", t + 5 }')" > "$T/late.out"
live_first=$(grep "\"id\":\"$id\"" "$T/late.out" | head -1 | sed 's/.*"seq":\([0-9]*\).*/\1/')
line_of() { grep -n "$1" "$T/late.out" | head -1 | cut -d: -f1; }
check "it joined mid-answer and had the end live before the frames it lacked" \
    test "${live_first:-0}" -gt 3 -a "$(line_of '"type":"done"')" -lt "$(line_of '"seq":3,')"
expect_eq "resumed after the end came live: the frames it lacked, once" "" \
    "$(resumed_right "$T/late.out" "$id" 2 "$(last_seq "$id")")"

# -- answers expire
start_worker w2 --answer-ttl 10
stop w1
id=$(post "short-lived @@tokens=3")
wait_until 10 sh -c "curl -s $API/api/answer/$id | grep -q '\"status\":\"done\"'"
ttl=$(rcli PTTL "${REDIS_PREFIX}answer:$id")
check "the history expires after answer_ttl" test "$ttl" -gt 0 -a "$ttl" -le 10000
# Redis expires it; not to wait 10 s, its clock is moved on
rcli PEXPIRE "${REDIS_PREFIX}answer:$id" 1 > /dev/null
wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT EXISTS ${REDIS_PREFIX}answer:$id) = 0 ]"
r=$(resume "$WS1" "$id" -1 --timeout 2)
expect_match "resume of an expired answer names it" "\"type\":\"error\",\"content\":\"[^\"]*no such answer[^\"]*: $id\"" "$r"
stop w2
start_worker w1

# -- cancel
id=$(post "to stop @@tokens=500 @@delay=20")
listen watcher "$WS2" --wait 1 --timeout 30
wait_until 10 sh -c "curl -s $API/api/answer/$id | grep -q '\"status\":\"streaming\"'"
r=$(wsclient --url "$WS1" --send "{\"type\":\"cancel\",\"id\":\"$id\"}" --wait 1 --timeout 10)
wait "$(pid_of watcher)"
expect_eq "a client on the other instance sees the answer end" 0 $?
expect_match "the answer ends with cancelled" "^\\{\"type\":\"cancelled\",\"id\":\"$id\",\"seq\":[0-9]+," "$(grep '"type":"cancelled"' "$T/watcher.out")"
# (told by P cancels, or by its next frame being refused, whichever is first)
check "the worker stopped the model call" wait_until 5 grep -q "job $id: .*model call stopped" "$T/w1.out"
check "the job is acknowledged" sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"
expect_match "GET /api/answer says cancelled" '"status":"cancelled"' "$(http GET "/api/answer/$id")"
r=$(wsclient --url "$WS1" --send "{\"type\":\"cancel\",\"id\":\"$id\"}" --timeout 1)
expect_match "cancelling an ended answer is an error naming it" "already ended\\): $id\"" "$r"
r=$(wsclient --url "$WS1" --send '{"type":"cancel","id":"1-0"}' --timeout 1)
expect_match "cancelling an unknown answer is an error" 'no such answer' "$r"
expect_match "POST /api/cancel of an ended answer is 409" '^409 ' "$(http POST /api/cancel -d "{\"id\":\"$id\"}")"
expect_match "POST /api/cancel without an id is 400" '^400 ' "$(http POST /api/cancel -d '{}')"

# a socket's own answer, cancelled over HTTP, the worker killed right after
wsclient --url "$WS2" --send '{"type":"text","content":"my own @@tokens=500 @@delay=20"}' --wait 1 --timeout 20 > "$T/own.out" &
own=$!
wait_until 10 grep -q '"type":"text"' "$T/own.out"
oid=$(grep '"type":"queued"' "$T/own.out" | sed 's/.*"id":"\([^"]*\)".*/\1/')
expect_match "POST /api/cancel of a streaming answer" "^200 \\{\"code\":200,\"message\":\"[^\"]*\",\"id\":\"$oid\"\\}" "$(http POST /api/cancel -d "{\"id\":\"$oid\"}")"
stop w1 KILL
wait "$own"
expect_eq "the asking socket gets the cancelled frame" "cancelled" "$(grep '^{' "$T/own.out" | tail -1 | sed 's/^{"type":"\([a-z]*\)".*/\1/')"
start_worker w1
sleep 3     # past worker_claim_idle_ms: nothing of it is left to claim
expect_match "after the worker's death the answer stays cancelled" '"status":"cancelled"' "$(http GET "/api/answer/$oid")"
check "nothing is pending" sh -c "[ \$(redis-cli -p $REDIS_PORT XPENDING ${REDIS_PREFIX}jobs workers | head -1) = 0 ]"

# queued: no worker runs; cancelled before any takes it, it never reaches the model
stop w1
id=$(post "never asked @@tokens=5")
expect_match "POST /api/cancel of a queued job" '^200 ' "$(http POST /api/cancel -d "{\"id\":\"$id\"}")"
start_worker w1
id2=$(post "asked after @@tokens=2")
wait_until 10 sh -c "curl -s $API/api/answer/$id2 | grep -q '\"status\":\"done\"'"
check "the model was asked the next question" grep -q 'asked after' "$T/standin.out"
check "the cancelled question never reached the model" sh -c "! grep -q 'never asked' $T/standin.out"
expect_eq "GET /api/answer of the cancelled queued job" "200 {\"id\":\"$id\",\"status\":\"cancelled\",\"content\":\"\",\"seq\":0}" "$(http GET "/api/answer/$id")"

# Redis behind Sentinel (redis_url sentinel://): a master, a replica and
# three Sentinels on loopback. The master is killed (kill -9) during a
# steady load of posted messages and streaming answers; Sentinel promotes
# the replica and every program follows it without losing its WebSocket
# clients or its running answers. With redis_wait_replicas: 1 every message
# that got a 200 is answered, and a stalled replica (SIGSTOP) makes a post
# and a socket message fail rather than be confirmed; then the new master
# is killed the same way with redis_wait_replicas: 0, what was lost is
# reported, and the answers that arrived are checked. Also: a Sentinel down
# at start, and a wrong master name.
. "$(dirname "$0")/../lib.sh"

MASTER=mm
PORT_A=$(free_port)      # the first master
PORT_B=$(free_port)      # its replica, promoted by the first failover
S1=$(free_port); S2=$(free_port); S3=$(free_port)

# redis_node NAME PORT [REDIS ARGS...]
redis_node() {
    n=$1; p=$2; shift 2
    mkdir -p "$T/$n"
    spawn "$n" redis-server --port "$p" --bind 127.0.0.1 --dir "$T/$n" --save "" \
        --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0 "$@"
    wait_until 10 redis-cli -p "$p" ping || { fail "redis $n starts"; exit 1; }
}

# sentinel NAME PORT: a Sentinel watching the first master, quick to act
sentinel() {
    mkdir -p "$T/$1"
    cat > "$T/$1/sentinel.conf" <<EOF
port $2
bind 127.0.0.1
dir $T/$1
sentinel resolve-hostnames no
sentinel monitor $MASTER 127.0.0.1 $PORT_A 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 2000
sentinel parallel-syncs $MASTER 1
EOF
    spawn "$1" redis-sentinel "$T/$1/sentinel.conf"
    wait_until 10 redis-cli -p "$2" ping || { fail "sentinel $1 starts"; exit 1; }
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }
master_port() { redis-cli -p "$S2" SENTINEL get-master-addr-by-name "$MASTER" | sed -n 2p; }
master_is() { [ "$(master_port)" = "$1" ]; }
# every Sentinel knows the other two and the replica
sentinels_ready() {
    for s in $S1 $S2 $S3; do
        info=$(redis-cli -p "$s" SENTINEL master "$MASTER" | tr '\n' ' ')
        printf '%s' "$info" | grep -q 'num-other-sentinels 2 ' || return 1
        printf '%s' "$info" | grep -q 'num-slaves 1 ' || return 1
    done
}

redis_node node_a "$PORT_A"
redis_node node_b "$PORT_B" --replicaof 127.0.0.1 "$PORT_A"
sentinel s2 "$S2"
sentinel s3 "$S3"
REDIS_PORT=$PORT_A      # lib.sh's helpers look here

# a wrong master name: said in so many words, and nothing runs against it
spawn wrongname "$BIN/worker" --redis-url "sentinel://127.0.0.1:$S2/nosuch"
check "a wrong master name is named in the log" \
    wait_until 10 grep -q "knows no master named 'nosuch'" "$T/wrongname.out"
stop wrongname
out=$(timeout 5 "$BIN/worker" --redis-url "sentinel://127.0.0.1:$S2" 2>&1)
expect_match "a URL without a master name is refused at start" "exit 1 .*master-name" "exit $? $out"

# the first Sentinel of the list is down when everything starts
export REDIS_URL="sentinel://127.0.0.1:$S1,127.0.0.1:$S2,127.0.0.1:$S3/$MASTER/0"
export REDIS_TIMEOUT_MS=1000 REDIS_WAIT_REPLICAS=1 REDIS_WAIT_TIMEOUT_MS=500
STANDIN_DELAY_MS=15 start_standin
start_worker w1
start_worker w2
start_wspush ws1
start_lighttpd
# (the replica in sync first: until then WAIT finds none and it is a 503;
# it is in sync when a WAIT of our own is answered by it)
acks() { [ "$(redis-cli -p "$1" WAIT 1 500)" -ge 1 ]; }
check "the replica acknowledges writes" wait_until 30 acks "$PORT_A"
r=$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"hello @@tokens=3"}')
expect_match "with the first Sentinel down, a message is accepted" '^200 ' "$r"
sentinel s1 "$S1"
check "the three Sentinels know each other and the replica" wait_until 20 sentinels_ready

listen client "ws://127.0.0.1:$WS_PORT_ws1/ws" --timeout 120

# post: one message every ~20 ms until $T/stop-posting exists; the ids of
# the accepted ones (200) go to $T/accepted, the other statuses to $T/refused
poster() {
    i=0
    while [ ! -e "$T/stop-posting" ]; do
        i=$((i + 1))
        r=$(curl -s -m 5 -w ' %{http_code}' -H 'Content-Type: application/json' \
            -d "{\"content\":\"failover $i @@tokens=30\"}" "$API/api/message")
        case "$r" in
        *' 200') printf '%s\n' "$r" | sed 's/.*"id":"\([^"]*\)".*/\1/' >> "$T/accepted" ;;
        *) printf '%s\n' "$r" >> "$T/refused" ;;
        esac
        sleep 0.02
    done
    rm -f "$T/stop-posting"
}
accepted_now() { wc -l < "$T/accepted"; }
more_accepted_than() { [ "$(accepted_now)" -gt "$1" ]; }
# ids whose answer ended with done at client a
done_ids() { grep -o '"type":"done","id":"[^"]*"' "$T/client.out" | sed 's/.*"id":"//; s/"$//' | sort -u; }
missing() { done_ids | comm -23 "$T/$1" - | wc -l; }
none_missing() { [ "$(missing "$1")" = 0 ]; }
# the programs' connections to Redis at port $1 (not the Sentinels', not a
# replica's, not this redis-cli's)
programs_on() { redis-cli -p "$1" CLIENT LIST | grep -v 'name=sentinel' | grep -v 'flags=S' | grep -vc 'cmd=client'; }
# both workers (3 each), ws-push (2) and at least one fcgi-api
all_on() { [ "$(programs_on "$1")" -ge 9 ]; }

# ---- failover 1: redis_wait_replicas 1 --------------------------------------
: > "$T/accepted"; : > "$T/refused"
poster &
POSTER=$!
wait_until 20 more_accepted_than 30
before=$(accepted_now)
stop node_a KILL
killed=$(ms_now)
check "Sentinel promotes the replica" wait_until 20 master_is "$PORT_B"
promoted=$(ms_now)
REDIS_PORT=$PORT_B
check "worker, ws-push and fcgi-api follow to the new master" wait_until 20 all_on "$PORT_B"
echo "failover 1: promoted $((promoted - killed)) ms after the kill, every program on the new master after $(($(ms_now) - killed)) ms"
check "worker w1 says the connection is back" grep -q "redis connection back" "$T/w1.out"
check "the worker heard the Sentinels' +switch-master" grep -q "+switch-master $MASTER" "$T/w1.out"
check "ws-push heard it too" grep -q "+switch-master $MASTER" "$T/ws1.out"
check "ws-push's two links reconnected" sh -c "[ \$(grep -c 'link connected' $T/ws1.out) -ge 4 ]"
# the new master has no replica yet: nothing can be confirmed
# ask NAME TEXT: a socket that sends TEXT and stays (it also sees the answers
# to everyone of the posts meanwhile)
ask() { spawn "$1" "$BIN/wsclient" --url "ws://127.0.0.1:$WS_PORT_ws1/ws" --send "{\"type\":\"text\",\"content\":\"$2\"}" --wait 100000 --timeout 60; }
ask noreplica "no replica"
check "without a replica a socket message gets the error frame" \
    wait_until 10 grep -q '"type":"error".*replicas' "$T/noreplica.out"
stop noreplica
check "without a replica a post is refused with 503" \
    wait_until 15 grep -q 'replicas.* 503$' "$T/refused"
redis_node node_a "$PORT_A" --replicaof 127.0.0.1 "$PORT_B"   # the old master comes back as a replica
check "posting succeeds again with the replica back" wait_until 20 more_accepted_than $((before + 20))
# OWN: the reply to a socket's own message (queued, or an error frame
# without an answer id); the answers to everyone's posts come to it too
OWN='"type":"\(queued\|error","\(code\|content\)\)"'
# ask_queued NAME TEXT: asks until queued, for up to 40 s: ws-push refuses
# jobs for a while (REPLICA_WAIT_PAUSE_MS, 5 s) after a WAIT that found too
# few replicas, and on a loaded machine the replica may need a few WAITs
# after its resync; each try has its own client and output file (a refusal
# in a shared file would end every later try at once); on failure it shows
# the last try and what ws-push said
ask_queued() {
    deadline=$(($(ms_now) + 40000)) try=0
    while [ "$(ms_now)" -lt "$deadline" ]; do
        try=$((try + 1))
        ask "$1$try" "$2"
        wait_until 3 grep -q "$OWN" "$T/$1$try.out"
        stop "$1$try"
        grep -q '"type":"queued"' "$T/$1$try.out" && return 0
        sleep 1
    done
    echo "$try tries; the last: $(grep "$OWN" "$T/$1$try.out" | head -1)"
    grep -iv 'job .*: queued by' "$T/ws1.out" | grep -i 'wait\|link\|queueing\|redis' | tail -4
    return 1
}
# the replica has caught up when a WAIT of our own is answered by it
check "the returned replica acknowledges writes" wait_until 30 acks "$PORT_B"
check "with the replica back a socket message is queued" ask_queued replicated "replicated @@tokens=2"
# a stalled replica (SIGSTOP: connected, but it acknowledges nothing): WAIT
# finds no replica in time, so nothing is confirmed, then all is well again
kill -STOP "$(pid_of node_a)"
# (a few tries: on a loaded machine a try may meet another refusal first,
# e.g. a reconnect; none may be accepted)
post_stalled() {
    for try in 1 2 3 4 5; do
        r=$(http POST /api/message -H 'Content-Type: application/json' -d "{\"content\":\"stalled replica $try\"}")
        case "$r" in
        200*) echo "accepted: $r"; return ;;
        503*replicas*) echo refused; return ;;
        esac
        sleep 0.5
    done
    echo "$r"
}
expect_eq "with the replica stalled a post is refused with 503 naming the replicas" refused "$(post_stalled)"
ask_stalled() {
    for try in 1 2 3; do
        ask "stalled$try" "stalled replica"
        wait_until 10 grep -q "$OWN" "$T/stalled$try.out"
        stop "stalled$try"
        grep -q '"type":"queued"' "$T/stalled$try.out" && return 1
        grep "$OWN" "$T/stalled$try.out" | grep -q replicas && return 0
    done
    return 1
}
check "with the replica stalled a socket message gets the error frame naming the replicas, not queued" \
    ask_stalled
kill -CONT "$(pid_of node_a)"
post_accepted() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"content":"replica resumed"}' "$API/api/message")" = 200 ]
}
check "with the replica resumed a post is accepted (once it caught up)" wait_until 15 post_accepted
check "with the replica resumed a socket message is queued" ask_queued resumed "replica resumed @@tokens=2"
touch "$T/stop-posting"
wait "$POSTER"
sort -u "$T/accepted" > "$T/accepted1"
total1=$(wc -l < "$T/accepted1")
wait_until 30 none_missing accepted1
expect_eq "redis_wait_replicas 1: every message that got a 200 was answered (done)" \
    "0 of $total1 missing" "$(missing accepted1) of $total1 missing"

# ---- failover 2: redis_wait_replicas 0 --------------------------------------
# (flags just "slave": not down, not disconnected)
replica_seen() {
    redis-cli -p "$PORT_A" ROLE | grep -qx connected || return 1
    for s in $S1 $S2 $S3; do redis-cli -p "$s" SENTINEL replicas "$MASTER" | grep -qx slave || return 1; done
}
check "the Sentinels see the old master as a healthy replica" wait_until 20 replica_seen
# the workers and fcgi-api again, without redis_wait_replicas (ws-push and
# its client stay)
stop w1; stop w2
REDIS_WAIT_REPLICAS=0 start_worker w1
REDIS_WAIT_REPLICAS=0 start_worker w2
fcgi=$(fcgi_pids)
kill "$(cat "$T/run/lighttpd.pid")"
rm -f "$T/run/lighttpd.pid"
# (an ended process may stay a zombie a while here: it counts as gone)
fcgi_running() { for p in $fcgi; do case "$(ps -o stat= -p "$p")" in ''|Z*) ;; *) return 0;; esac; done; return 1; }
fcgi_ended() { ! fcgi_running; }   # (those pids; not lib.sh fcgi_gone, which matches by config)
check "lighttpd's fcgi-api processes stop" wait_until 10 fcgi_ended
REDIS_WAIT_REPLICAS=0 start_lighttpd
: > "$T/accepted"
poster &
POSTER=$!
wait_until 20 more_accepted_than 30
before=$(accepted_now)
stop node_b KILL
killed=$(ms_now)
check "Sentinel promotes the old master again" wait_until 20 master_is "$PORT_A"
promoted=$(ms_now)
REDIS_PORT=$PORT_A
check "every program follows again" wait_until 20 all_on "$PORT_A"
echo "failover 2: promoted $((promoted - killed)) ms after the kill, every program on the new master after $(($(ms_now) - killed)) ms"
check "posting succeeds again after the second failover" wait_until 20 more_accepted_than $((before + 20))
touch "$T/stop-posting"
wait "$POSTER"
sort -u "$T/accepted" > "$T/accepted2"
total2=$(wc -l < "$T/accepted2")
wait_until 20 none_missing accepted2

# every answer's frames in order and once, ended once: prints the answers
# of $1 (a file of ids) that break it. A frame before the last may be
# missing (confirmed on a master before it reached the replica: README,
# "During a failover"); such gaps are counted in $T/gaps.
broken() {
    grep '"id":"' "$T/client.out" | sed 's/^{"type":"\([a-z]*\)","id":"\([^"]*\)","seq":\([0-9]*\).*/\2 \3 \1/' |
        awk -v ids="$1" -v gaps="$T/gaps" 'BEGIN { while ((getline id < ids) > 0) want[id] = 1 }
             !($1 in want) { next }
             { if (($1 in next_seq && $2 < next_seq[$1]) || ended[$1]) bad[$1] = 1
               if ($2 > next_seq[$1]) gap++
               next_seq[$1] = $2 + 1
               if ($3 == "done" || $3 == "error") ended[$1] = 1 }
             END { for (id in bad) print id; print gap + 0 > gaps }'
}
expect_eq "redis_wait_replicas 1: every answer came in order and once" "" "$(broken "$T/accepted1")"
echo "redis_wait_replicas 1: $(cat "$T/gaps") frame gap(s) in the answers"
echo "redis_wait_replicas 0: $(missing accepted2) of $total2 messages that got a 200 were lost"
expect_eq "redis_wait_replicas 0: every answer that arrived came in order and once" "" \
    "$(broken "$T/accepted2")"
echo "redis_wait_replicas 0: $(cat "$T/gaps") frame gap(s) in the answers"
check "the client stayed connected through both failovers" \
    sh -c "! grep -q '^# \\(closed\\|disconnected\\)' $T/client.out"
check "ws-push ws1 is still alive" kill -0 "$(pid_of ws1)"
echo "failover 1: accepted $total1; failover 2: accepted $total2; refused $(wc -l < "$T/refused")"

# ---- make run with the Sentinels --------------------------------------------
stop w1; stop w2; stop ws1; stop client; stop standin
kill "$(cat "$T/run/lighttpd.pid")" 2>/dev/null
export PORT=$(free_port) WS_PORT=$(free_port) RUN=$T/stack
mkdir -p "$RUN"
REDIS_WAIT_REPLICAS=0 spawn makerun bash "$ROOT/scripts/run.sh"
wait_until 60 grep -q "is running" "$T/makerun.out" ||
    { fail "make run starts with the Sentinels' Redis" "$(tail -20 "$T/makerun.out")"; exit 1; }
check "make run started no Redis of its own" test ! -e "$RUN/redis.pid"
API="http://127.0.0.1:$PORT"
r=$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"via make run"}')
expect_match "make run: a message is accepted" '^200 ' "$r"
id=$(printf '%s' "$r" | sed 's/.*"id":"\([^"]*\)".*/\1/')
check "make run: it is answered, through the master the Sentinels name" \
    wait_until 10 sh -c "redis-cli -p $PORT_A XRANGE ${REDIS_PREFIX}answer:$id - + | grep -q '\"done\"'"
stop makerun TERM

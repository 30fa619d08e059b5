# Nothing accepted is lost: a steady stream of posted messages while Redis is
# killed (kill -9, append-only file fsynced always) and restarted, while
# Redis drops every subscriber (CLIENT KILL TYPE pubsub), and while it stalls
# (SIGSTOP: connections open, nothing answered). Every message that
# got a 200 must reach done or error, complete and once, at clients of two
# ws-push instances that stayed connected throughout.
. "$(dirname "$0")/../lib.sh"

export REDIS_TIMEOUT_MS=1000
start_redis
STANDIN_DELAY_MS=15 start_standin
start_worker w1
start_worker w2
start_wspush ws1
start_wspush ws2
start_lighttpd

listen a "ws://127.0.0.1:$WS_PORT_ws1/ws" --timeout 300
listen b "ws://127.0.0.1:$WS_PORT_ws2/ws" --timeout 300

# post N: one message every ~20 ms until $T/stop-posting exists; the ids of
# the accepted ones (200) go to $T/accepted, the other statuses to $T/refused
poster() {
    i=0
    while [ ! -e "$T/stop-posting" ]; do
        i=$((i + 1))
        r=$(curl -s -m 5 -w ' %{http_code}' -H 'Content-Type: application/json' \
            -d "{\"content\":\"fault $i @@tokens=40\"}" "$API/api/message")
        case "$r" in
        *' 200') printf '%s\n' "$r" | sed 's/.*"id":"\([^"]*\)".*/\1/' >> "$T/accepted" ;;
        *) echo "${r##* }" >> "$T/refused" ;;
        esac
        sleep 0.02
    done
}
: > "$T/accepted"
: > "$T/refused"
poster &
POSTER=$!

accepted_now() { wc -l < "$T/accepted"; }
more_accepted_than() { [ "$(accepted_now)" -gt "$1" ]; }

wait_until 20 more_accepted_than 60
before_kill=$(accepted_now)
stop redis KILL
sleep 1
redis_spawn
wait_until 10 rcli ping
check "posting succeeds again after the Redis restart" wait_until 20 more_accepted_than $((before_kill + 60))
check "ws-push ws1 caught up after the restart" grep -q "catching up on answers" "$T/ws1.out"

before_kill=$(accepted_now)
killed=$(rcli CLIENT KILL TYPE pubsub)
check "CLIENT KILL dropped both subscribers" test "$killed" -ge 2
check "posting goes on after CLIENT KILL" wait_until 20 more_accepted_than $((before_kill + 60))

before_kill=$(accepted_now)
kill -STOP "$(pid_of redis)"
sleep 3
# (while it is stalled: the programs go on sending it commands now and
# then, which must not count as it answering)
check "the worker gave up on the stalled Redis" grep -q "redis did not answer within 1000 ms" "$T/w1.out"
check "ws-push gave up on the stalled Redis" grep -q "redis did not answer within 1000 ms\|subscriber link silent" "$T/ws1.out"
kill -CONT "$(pid_of redis)"
check "posting goes on after the stall" wait_until 20 more_accepted_than $((before_kill + 60))
touch "$T/stop-posting"
wait "$POSTER"

sort -u "$T/accepted" > "$T/accepted.sorted"
total=$(wc -l < "$T/accepted.sorted")
check "a steady load was accepted across the faults" test "$total" -ge 180

# ids whose answer ended (done or error) at client $1
ended() { grep -o '"type":"\(done\|error\)","id":"[^"]*"' "$T/$1.out" | sed 's/.*"id":"//; s/"$//' | sort -u; }
missing() { ended "$1" | comm -23 "$T/accepted.sorted" - | wc -l; }
all_ended() { [ "$(missing a)" = 0 ] && [ "$(missing b)" = 0 ]; }
wait_until 90 all_ended
expect_eq "every accepted message was answered at the client of ws1" "0 of $total missing" "$(missing a) of $total missing"
expect_eq "every accepted message was answered at the client of ws2" "0 of $total missing" "$(missing b) of $total missing"

# every answer's frames: seq 0, 1, 2, ... without a gap or a repeat, ended
# once; prints the answers that break it
broken() {
    grep '"id":"' "$T/$1.out" | sed 's/^{"type":"\([a-z]*\)","id":"\([^"]*\)","seq":\([0-9]*\).*/\2 \3 \1/' |
        awk '{ if ($2 != next_seq[$1] || ended[$1]) bad[$1] = 1; next_seq[$1] = $2 + 1
               if ($3 == "done" || $3 == "error") ended[$1] = 1; if ($3 == "done") done++ }
             END { for (id in bad) print id; print done " done" > "/dev/stderr" }' 2> "$T/$1.done"
}
expect_eq "at ws1's client every answer came whole, in order and once" "" "$(broken a)"
expect_eq "at ws2's client every answer came whole, in order and once" "" "$(broken b)"
check "most answers ended with done" test "$(cut -d' ' -f1 "$T/a.done")" -ge $((total * 9 / 10))
# (a post refused during the stall may still have been queued, and delivered
# to a read the worker had given up on: it reads its own pending jobs again)
check "the jobs stream is empty" wait_until 20 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"
check "both clients stayed connected" sh -c "grep -q '^# connected' $T/a.out && ! grep -q '^# \\(closed\\|disconnected\\)' $T/a.out $T/b.out"
check "worker w1 is still alive" kill -0 "$(pid_of w1)"
check "ws-push ws1 is still alive" kill -0 "$(pid_of ws1)"
echo "accepted $total, refused $(wc -l < "$T/refused"); done at a: $(cat "$T/a.done")"

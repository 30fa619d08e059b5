# Several ws-push processes on one port (ws_processes: 2, SO_REUSEPORT):
# the kernel spreads the clients over both, each is an instance of its own
# (presence, reply channels), /api/status counts them all, a broadcast
# reaches every client and a client's own answer reaches it whichever
# process took it; one process going away leaves the other serving. Without
# ws_processes the port is not shared.
. "$(dirname "$0")/../lib.sh"

start_redis
start_standin
start_worker w1
P=$(free_port)
start_wspush_on sa "$P" --ws-processes 2
start_wspush_on sb "$P" --ws-processes 2
WS_PORT=$P start_lighttpd
URL="ws://127.0.0.1:$P/ws"

check "both processes listen on port $P" test "$(ss -ltnH "sport = :$P" | wc -l)" = 2

N=24
for i in $(seq 1 $N); do listen "c$i" "$URL" --timeout 60; done
count() { redis-cli -p "$REDIS_PORT" GET "${REDIS_PREFIX}wspush:$1"; }
counted_all() { [ "$(( $(count sa) + $(count sb) ))" = "$N" ]; }
check "each process holds clients, together all $N" wait_until 10 counted_all
check "... both have some (sa $(count sa), sb $(count sb))" test "$(count sa)" -gt 0 -a "$(count sb)" -gt 0
expect_match "GET /api/status counts them all" "\"connectionCount\":$N," "$(http GET /api/status)"

id=$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"to everyone @@tokens=5"}' |
    sed 's/.*"id":"\([^"]*\)".*/\1/')
got_all() { [ "$(grep -l "\"type\":\"done\",\"id\":\"$id\"" "$T"/c*.out | wc -l)" = "$N" ]; }
check "a broadcast answer reaches all $N clients" wait_until 20 got_all

own_answers() {  # own_answers K: K clients, each asks its own question; prints how many got theirs
    ok=0
    for k in $(seq 1 "$1"); do
        wsclient --url "$URL" --send "{\"type\":\"text\",\"content\":\"mine $k\"}" --wait 1 --timeout 10 > "$T/own$k.out" &
    done
    wait
    for k in $(seq 1 "$1"); do
        text=$(grep '"type":"text"' "$T/own$k.out" | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n')
        [ "$text" = "Echo: mine $k" ] && grep -q '"type":"done"' "$T/own$k.out" && ok=$((ok + 1))
    done
    echo "$ok"
}
expect_eq "each of 10 clients gets its own answer, whichever process took it" 10 "$(own_answers 10)"

stop sb
check "with sb gone, sa alone listens" wait_until 10 sh -c "[ \$(ss -ltnH 'sport = :$P' | wc -l) = 1 ]"
expect_eq "new clients are all served by sa" 10 "$(own_answers 10)"

r=$(timeout 10 "$BIN/ws-push" --ws-port "$P" --instance-id sc 2>&1)
rc=$?
check "without ws_processes the port is not shared: ws-push exits non-zero" test "$rc" -ne 0
expect_match "... saying why" "cannot listen on 127.0.0.1:$P.*Address already in use" "$r"

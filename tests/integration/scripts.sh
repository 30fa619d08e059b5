# The jobs' Lua script goes by its SHA1 (EVALSHA, common/redis_script.h): fcgi-api
# and ws-push load it on each new Redis connection. After a SCRIPT FLUSH the
# jobs sent before the NOSCRIPT is read are refused (here, one at a time:
# the first; 503 / an error frame, nothing is queued), and the next sends
# the script again and is queued; /api/status the same. The
# worker, whose answer script goes by SHA1 too, reconnects and writes the
# refused frame again: the answer arrives whole.
. "$(dirname "$0")/../lib.sh"

J='Content-Type: application/json'
start_redis
start_wspush ws1
FCGI_PROCS=1 start_lighttpd     # one process: "the next request" is its next
WS="ws://127.0.0.1:$WS_PORT_ws1/ws"
jobs() { rcli XLEN "${REDIS_PREFIX}jobs"; }
post() { http POST /api/message -H "$J" -d "{\"content\":\"$1\"}"; }
# socket TEXT: the frame answering a socket's message (no worker runs: the
# client leaves after 2 s)
socket() { wsclient --url "$WS" --send "{\"type\":\"text\",\"content\":\"$1\"}" --wait 1 --timeout 2 |
           grep '"type":"\(queued\|error\)"'; }

# the first post opens fcgi-api's connection (and loads the script) first
expect_match "a post is queued" '^200 ' "$(post first)"
redis-cli -p "$REDIS_PORT" MONITOR > "$T/monitor" 2>&1 &
MONITOR=$!
wait_until 5 test -s "$T/monitor"
expect_match "a post is queued (watched)" '^200 ' "$(post watched)"
expect_match "a socket message is queued (watched)" '"type":"queued"' "$(socket watched)"
sleep 0.3
kill "$MONITOR"; wait "$MONITOR" 2>/dev/null
expect_eq "both went by the script's SHA1" 2 "$(grep -c '"EVALSHA" "[0-9a-f]\{40\}" "7"' "$T/monitor")"
expect_eq "and neither sent the script's text" 0 "$(grep -c "redis.call('TIME')" "$T/monitor")"

# SCRIPT FLUSH: one refusal each, nothing queued for it, then all is well
n=$(jobs)
rcli SCRIPT FLUSH > /dev/null
expect_eq "after SCRIPT FLUSH a post is refused with 503" \
    '503 {"code":503,"status":"error","message":"服务暂时不可用 (service unavailable, try again)"}' \
    "$(post flushed)"
expect_eq "... and nothing was queued for it" "$n" "$(jobs)"
check "... and fcgi-api says why" grep -q "lost the enqueue script" "$LOG_DIR"/*.log
expect_match "the next post is queued" '^200 ' "$(post again)"
expect_eq "... once" $((n + 1)) "$(jobs)"
rcli SCRIPT FLUSH > /dev/null
expect_match "after SCRIPT FLUSH a socket message gets an error frame" \
    '"type":"error","content":"服务暂时不可用' "$(socket flushed)"
expect_eq "... and nothing was queued for it" $((n + 1)) "$(jobs)"
check "... and ws-push says why" grep -q "lost the enqueue script" "$T/ws1.out"
expect_match "the next socket message is queued" '"type":"queued"' "$(socket again)"
expect_eq "... once" $((n + 2)) "$(jobs)"

# /api/status counts the sockets with a script too
rcli SCRIPT FLUSH > /dev/null
expect_match "after SCRIPT FLUSH /api/status is 503 once" '^503 ' "$(http GET /api/status)"
expect_match "then it counts again" '^200 .*"connectionCount":[0-9]' "$(http GET /api/status)"

# the worker's answer script: a SCRIPT FLUSH while it streams makes it
# reconnect (loading the script first) and write the refused frame again;
# the answer arrives whole, in order, once
start_standin
start_worker w1
# (the posts above are answered first, to every socket: the watcher joins after)
no_jobs_left() { wait_until 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"; }
check "the worker answers the jobs queued before it ran" no_jobs_left
listen watcher "$WS" --wait 1 --timeout 30
# (the last SCRIPT FLUSH was fcgi-api's enqueue script's too: its first job
# after it is refused; its status-count script ran as EVAL since)
expect_match "the first post after that SCRIPT FLUSH is refused too" '^503 ' "$(post warm)"
r=$(post "flushed mid-answer @@tokens=40 @@delay=25")
expect_match "a post for a streaming answer is queued" '^200 ' "$r"
id=$(printf '%s' "$r" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
wait_until 10 grep -q "\"id\":\"$id\",\"seq\":5," "$T/watcher.out"
rcli SCRIPT FLUSH > /dev/null
wait "$(pid_of watcher)"
expect_eq "an answer streaming through a SCRIPT FLUSH comes whole, in order, once" \
    "$(seq 0 40 | tr '\n' ' ')" \
    "$(grep "\"id\":\"$id\"" "$T/watcher.out" | jq -r .seq | tr '\n' ' ')"
check "... the worker said why it reconnected" grep -q "Redis refused a frame: NOSCRIPT" "$T/w1.out"

# a job the worker sets aside right after a SCRIPT FLUSH still gets its
# error frame and leaves the jobs stream (that frame goes as EVAL)
rcli SCRIPT FLUSH > /dev/null
dead=$(rcli XADD "${REDIS_PREFIX}jobs" '*' kind video reply "${REDIS_PREFIX}out:all")
check "a malformed job after a SCRIPT FLUSH goes to dead letters" \
    wait_until 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}dead) = 1 ]"
check "... its answer ends with the error frame" \
    wait_until 5 sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}answer:$dead - + | grep -q 'set aside'"
check "... and it left the jobs stream" no_jobs_left

# Redis refuses SCRIPT LOAD (an ACL): on their next connection the programs
# send the scripts as EVAL, and everything still works
# (the SCRIPT FLUSH above emptied Redis' cache: fcgi-api's next post, 503 or
# 200 by when it comes, puts its script back)
post "after the flush" > /dev/null
rcli ACL SETUSER default -script > /dev/null
links=$(grep -c 'command link connected' "$T/ws1.out")
rcli CLIENT KILL TYPE normal > /dev/null      # (not this redis-cli's)
check "ws-push reconnects" wait_until 10 sh -c "[ \$(grep -c 'command link connected' $T/ws1.out) -gt $links ]"
check "the worker reconnects" wait_until 10 grep -q "SCRIPT LOAD: NOPERM" "$T/w1.out"
expect_match "a post on fcgi-api's next connection is queued" '^200 ' "$(post refused-load)"
check "... fcgi-api says the script goes as EVAL" grep -q "SCRIPT LOAD: NOPERM.*as EVAL" "$LOG_DIR"/*.log
check "... ws-push too" grep -q "SCRIPT LOAD: NOPERM.*as EVAL" "$T/ws1.out"
redis-cli -p "$REDIS_PORT" MONITOR > "$T/monitor2" 2>&1 &
MONITOR=$!
wait_until 5 test -s "$T/monitor2"
check "the post before the ACL is answered" no_jobs_left
listen watcher2 "$WS" --wait 1 --timeout 30
r=$(post "as EVAL @@tokens=5")
expect_match "a post is queued (watched)" '^200 ' "$r"
id=$(printf '%s' "$r" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
wait "$(pid_of watcher2)"
expect_match "a socket message is queued (watched)" '"type":"queued"' "$(socket "as EVAL")"
kill "$MONITOR"; wait "$MONITOR" 2>/dev/null
expect_eq "both went as EVAL with the script's text" 2 "$(grep -c "\"EVAL\" \"local t = redis.call('TIME')" "$T/monitor2")"
expect_eq "... no EVALSHA of the enqueue script" 0 "$(grep -c '"EVALSHA" "[0-9a-f]\{40\}" "7"' "$T/monitor2")"
check "the worker's answer frames went as EVAL too" grep -q '"EVAL" "local function usage_sorted.*local function count_usage' "$T/monitor2"
expect_eq "... and the answer came whole" "0 1 2 3 4 5" \
    "$(grep "\"id\":\"$id\"" "$T/watcher2.out" | jq -r .seq | tr '\n' ' ' | sed 's/ $//')"
rcli ACL SETUSER default +@all > /dev/null

# Redis refuses a dead letter's error frame (here an ACL, as out of memory
# or a replica would): the job stays pending and whoever claims it next
# sets it aside again, so it is in the dead-letter stream (twice rather than
# never) and leaves the jobs stream
rcli ACL SETUSER admin on nopass '~*' '&*' +@all > /dev/null
acli() { redis-cli -p "$REDIS_PORT" --user admin --pass '' --no-auth-warning "$@"; }
acli ACL SETUSER default -xadd > /dev/null
dead=$(acli XADD "${REDIS_PREFIX}jobs" '*' kind video reply "${REDIS_PREFIX}out:all")
check "the worker says Redis refused the error frame" \
    wait_until 10 grep -q "job $dead: Redis refused its error frame: .*stays pending" "$T/w1.out"
expect_eq "... the job stays pending" 1 "$(acli XPENDING "${REDIS_PREFIX}jobs" workers | head -1)"
acli ACL SETUSER default +@all > /dev/null
stop w1
start_worker w2 --worker-claim-idle-ms 500
check "... the next worker sets it aside" wait_until 10 sh -c \
    "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}dead - + | grep -qx '$dead'"
check "... with its error frame" \
    wait_until 5 sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}answer:$dead - + | grep -q 'set aside'"
check "... and it left the jobs stream" no_jobs_left

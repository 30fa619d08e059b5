# The worker against the AI stand-in: streaming order, images, every failure
# mode, at-least-once delivery (SIGKILL mid-answer, dead letters), SIGTERM,
# Redis restart, bounded answers (event, text, time, plain body) and bounded
# memory against a stream that never ends an event.
. "$(dirname "$0")/../lib.sh"

start_redis
start_standin
start_wspush ws1
WS="ws://127.0.0.1:$WS_PORT_ws1/ws"
start_worker w1 --ai-retries 2 --worker-claim-idle-ms 1500

# ask TEXT: sends TEXT over a socket, waits for its answer, prints the frames
ask() { wsclient --url "$WS" --send "{\"type\":\"text\",\"content\":\"$1\"}" --wait 1 --timeout "${2:-30}"; }
answer_text() { grep '"type":"text"' | sed 's/.*"content":"\([^"]*\)".*/\1/' | tr -d '\n'; }
error_of() { grep '"type":"error"' | sed 's/.*"content":"\([^"]*\)".*/\1/'; }

out=$(ask "one two three four five")
expect_eq "answer text is complete" "Echo: one two three four five" "$(printf '%s\n' "$out" | answer_text)"
expect_eq "chunks arrive in order" "0 1 2 3 4 5 " "$(printf '%s\n' "$out" | grep '"type":"text"' | sed 's/.*"seq":\([0-9]*\).*/\1/' | tr '\n' ' ')"
expect_match "done carries the chunk count" '"type":"done".*"seq":6' "$out"

out=$(wsclient --url "$WS" --send-image "$ROOT/tests/fixtures/pixel.png" --question "what is it?" --wait 1 --timeout 30)
expect_eq "image job is answered from its bytes" "I see a PNG image of $(stat -c %s "$ROOT/tests/fixtures/pixel.png") bytes. You asked: what is it?" "$(printf '%s\n' "$out" | answer_text)"
check "image key is removed once answered" sh -c "[ -z \"\$(redis-cli -p $REDIS_PORT --scan --pattern '${REDIS_PREFIX}image:*')\" ]"

out=$(ask "busy @@fail=429*2")
expect_eq "429 twice, then the retry answers" "Echo: busy" "$(printf '%s\n' "$out" | answer_text)"
check "retries are logged" grep -q "HTTP 429.*retry 2/2" "$T/w1.out"

out=$(ask "always busy @@fail=429")
expect_match "429 after all retries says the service is busy" "busy" "$(printf '%s\n' "$out" | error_of)"

out=$(ask "down @@fail=500")
expect_match "5xx after all retries gives a friendly error" "unavailable" "$(printf '%s\n' "$out" | error_of)"
check "no text before that error" sh -c "! printf '%s' '$out' | grep -q '\"type\":\"text\"'"

out=$(ask "key @@fail=401")
expect_match "401 is a configuration error" "rejected our credentials" "$(printf '%s\n' "$out" | error_of)"
ask "again @@fail=403" > /dev/null
expect_eq "the configuration error is logged once" 1 "$(grep -c 'rejected us' "$T/w1.out")"

out=$(ask "a b c d e f @@cut=2")
expect_eq "cut stream: the tokens sent are delivered" "Echo: a " "$(printf '%s\n' "$out" | answer_text)"
expect_match "cut stream ends with an error frame" "interrupted" "$(printf '%s\n' "$out" | error_of)"

out=$(ask "a b c @@malformed=1")
expect_match "malformed JSON in the stream gives an error frame" "interrupted|invalid" "$(printf '%s\n' "$out" | error_of)"
out=$(ask "a b c @@error=1")
expect_match "error object in the stream gives an error frame" "interrupted|invalid" "$(printf '%s\n' "$out" | error_of)"
out=$(ask "x @@malformed=0")
expect_match "malformed first event gives an error frame" "invalid" "$(printf '%s\n' "$out" | error_of)"
check "worker survived every bad response" kill -0 "$(pid_of w1)"
check "failed jobs are acknowledged too" sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"

# many answers at once in one process
listen all "$WS" --wait 20 --timeout 60
for i in $(seq 1 20); do
    redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind text content "n$i @@delay=50 a b c d" reply "${REDIS_PREFIX}out:all" ts 0 > /dev/null
done
wait "$(pid_of all)"
expect_eq "20 concurrent answers all complete" 20 "$(grep -c '"type":"done"' "$T/all.out")"
stop w1

# timeouts and connection failures, with a worker configured for them
start_worker w2 --ai-timeout 1 --ai-retries 1
out=$(ask "silence @@hang")
expect_match "a silent model times out into an error" "unavailable" "$(printf '%s\n' "$out" | error_of)"
stop w2
closed=$(free_port)
start_worker w3 --ai-base-url "http://127.0.0.1:$closed/v1" --ai-retries 1
check "the worker uses the configured model URL" wait_until 5 grep -q "at http://127.0.0.1:$closed/v1," "$T/w3.out"
out=$(ask "nobody home")
expect_match "an unreachable model gives an error" "unavailable" "$(printf '%s\n' "$out" | error_of)"
check "connect failures are retried" grep -q "connect to server; retry 1/1" "$T/w3.out"
stop w3

# SIGTERM: the running answer is finished, then the worker exits
start_worker w4
listen t "$WS" --wait 1 --timeout 30
redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind text content "graceful @@delay=150 a b c d e" reply "${REDIS_PREFIX}out:all" ts 0 > /dev/null
wait_until 10 grep -q '"type":"text"' "$T/t.out"
kill -TERM "$(pid_of w4)"
wait "$(pid_of w4)"; rc=$?
wait "$(pid_of t)"
expect_eq "worker exits 0 on SIGTERM" 0 "$rc"
check "the answer running at SIGTERM was finished" grep -q '"type":"done"' "$T/t.out"

# SIGKILL mid-answer: another worker claims the job and answers it
start_worker w5 --worker-claim-idle-ms 1000
listen k "$WS" --wait 1 --timeout 40
redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind text content "survive @@delay=200 a b c d e f" reply "${REDIS_PREFIX}out:all" ts 0 > /dev/null
wait_until 10 grep -q '"type":"text"' "$T/k.out"
stop w5 KILL
check "the job stays pending after its worker died" sh -c "redis-cli -p $REDIS_PORT XPENDING ${REDIS_PREFIX}jobs workers | head -1 | grep -qx 1"
start_worker w6 --worker-claim-idle-ms 1000
wait "$(pid_of k)"
expect_eq "a live worker finishes the dead one's job" 0 $?
check "the claim is logged" grep -q "claimed from a silent worker" "$T/w6.out"
check "nothing left pending" wait_until 5 sh -c "redis-cli -p $REDIS_PORT XPENDING ${REDIS_PREFIX}jobs workers | head -1 | grep -qx 0"
stop w6

# a job delivered too often goes to the dead-letter stream
start_worker w7
listen d "$WS" --wait 1 --timeout 40
redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind text content "cursed @@delay=300 a b c d e f" reply "${REDIS_PREFIX}out:all" ts 0 > /dev/null
wait_until 10 grep -q '"type":"text"' "$T/d.out"
stop w7 KILL
start_worker w8 --worker-claim-idle-ms 1000 --worker-max-deliveries 1
wait "$(pid_of d)"
check "the client is told the job was given up" grep -q 'set aside' "$T/d.out"
expect_eq "the job is in the dead-letter stream" 1 "$(rcli XLEN "${REDIS_PREFIX}dead")"
check "the dead letter keeps the job and the reason" sh -c "redis-cli -p $REDIS_PORT XRANGE ${REDIS_PREFIX}dead - + | tr '\n' ' ' | grep -q 'reason delivered 1 times.*cursed'"
check "the dead job left the jobs stream" sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"

# a malformed entry is dead-lettered at once
redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind video reply "${REDIS_PREFIX}out:all" > /dev/null
check "a malformed job goes to dead letters" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}dead) = 2 ]"
redis-cli -p "$REDIS_PORT" XADD "${REDIS_PREFIX}jobs" '*' kind text content hi reply "" > /dev/null
check "a job with an empty reply channel goes to dead letters" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}dead) = 3 ]"
check "... once, and leaves the jobs stream" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN ${REDIS_PREFIX}jobs) = 0 ]"

# Redis restart: the worker reconnects and goes on
restart_redis
check "worker reconnects after a Redis restart" wait_until 15 grep -q "redis connection back" "$T/w8.out"
wait_until 15 sh -c "[ \$(grep -c 'command link connected' $T/ws1.out) -ge 2 ]"
out=$(ask "after the restart")
expect_eq "jobs are answered after the restart" "Echo: after the restart" "$(printf '%s\n' "$out" | answer_text)"
check "worker is still alive" kill -0 "$(pid_of w8)"

stop w8

# Bounded answers: an event, an answer's text, its time and a non-streamed
# body each have a cap; going over ends the answer with an error frame and
# is not retried (the same request would only go over again).
start_worker w9 --ai-retries 2 --ai-max-event-bytes 4096 --ai-max-answer-bytes 2000 \
    --ai-max-answer-seconds 2
text_len() { answer_text | wc -c; }

out=$(ask "retried once @@fail=500*1")
expect_eq "w9 answers what fits its caps" "Echo: retried once" "$(printf '%s\n' "$out" | answer_text)"
check "w9 logs a retry when one is due (the twin of the checks below)" grep -q "retry 1/2" "$T/w9.out"

out=$(ask "$(head -c 6000 /dev/zero | tr '\0' x)")
expect_match "an event over ai_max_event_bytes ends the answer as too long" "too long" "$(printf '%s\n' "$out" | error_of)"
check "the event cap is logged" grep -q "went over ai_max_event_bytes (4096)" "$T/w9.out"

out=$(ask "@@endless @@delay=0")
expect_match "an answer over ai_max_answer_bytes ends as too long" "too long" "$(printf '%s\n' "$out" | error_of)"
n=$(printf '%s\n' "$out" | text_len)
check "the text before it is delivered, at most the cap ($n bytes)" [ "$n" -gt 0 -a "$n" -le 2000 ]
check "the answer byte cap is logged" grep -q "went over ai_max_answer_bytes (2000)" "$T/w9.out"

out=$(ask "@@endless @@delay=100")
expect_match "an answer over ai_max_answer_seconds ends as too long" "too long" "$(printf '%s\n' "$out" | error_of)"
check "its text before that is delivered" [ "$(printf '%s\n' "$out" | text_len)" -gt 0 ]
check "the time cap is logged" grep -q "went over ai_max_answer_seconds (2)" "$T/w9.out"

out=$(ask "a b c @@plain")
expect_eq "a non-streamed answer within the caps is delivered" "Echo: a b c" "$(printf '%s\n' "$out" | answer_text)"
out=$(ask "@@plain @@tokens=500 @@delay=0")
expect_match "a non-streamed answer over ai_max_answer_bytes is too long" "too long" "$(printf '%s\n' "$out" | error_of)"
out=$(ask "@@plain @@tokens=20000 @@delay=0")
expect_match "a non-streamed body over its cap is too long" "too long" "$(printf '%s\n' "$out" | error_of)"
check "the body cap is logged" grep -q "non-streamed answer went over" "$T/w9.out"
expect_eq "nothing over a cap was retried" 1 "$(grep -c 'retry [0-9]*/' "$T/w9.out")"
stop w9

# A model whose data lines never end an event (issue 11: 5.45 GB in 30 s).
# Each answer is cut at ai_max_event_bytes (default 1 MiB), not retried, and
# the worker's memory stays small while it happens.
FLOOD_PORT=$(free_port)
spawn flood perl "$ROOT/tests/tools/sse-flood.pl" "$FLOOD_PORT"
# (not port_open: a probe would count as a request)
wait_until 10 grep -q listening "$T/flood.out" || fail "the flooding model starts"
start_worker w10 --ai-base-url "http://127.0.0.1:$FLOOD_PORT/v1" --ai-retries 2
w10=$(pid_of w10)
spawn rss sh -c "while kill -0 $w10; do awk '/^VmRSS/ {print \$2}' /proc/$w10/status; sleep 0.05; done"
for i in 1 2 3 4 5; do
    out=$(ask "flood $i")
    expect_match "flood $i: the answer ends with an error frame" "too long" "$(printf '%s\n' "$out" | error_of)"
done
stop rss
expect_eq "each flooded answer was asked once (not retried)" 5 "$(grep -c '^request' "$T/flood.out")"
check "the event cap is what ended them" grep -q "went over ai_max_event_bytes (1048576)" "$T/w10.out"
max=$(sort -n "$T/rss.out" | tail -1)
check "the worker's memory was sampled while it was flooded ($(wc -l < "$T/rss.out") samples)" [ "$(wc -l < "$T/rss.out")" -ge 2 ]
check "the worker's memory stayed small (max VmRSS ${max:-?} kB < 300 MB)" [ "${max:-999999999}" -lt 300000 ]
check "worker survived the flood" kill -0 "$w10"
stop w10

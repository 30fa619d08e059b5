# Conversations (issue 15): a question continues the conversation it names
# (or starts one, whose id comes back), the worker sends the earlier turns to
# the model (the stand-in's echo says how many it got and quotes the
# previous question), trimmed by turns and bytes; only complete answers are
# stored; two questions of one conversation at once are answered in order by
# two workers; GET/DELETE /api/conversation/<id>; with authentication a
# conversation is its user's.
. "$(dirname "$0")/../lib.sh"

J='Content-Type: application/json'
SECRET="conversation-test-secret-$$"

start_redis
start_standin
# one model slot each: the second question of a conversation goes to the
# other worker while the first one's answer streams
# (a job of a worker that died is claimed after 1.5 s)
WFLAGS="--worker-concurrency 1 --conversation-max-turns 3 --conversation-max-bytes 400 --worker-claim-idle-ms 1500"
start_worker w1 $WFLAGS
start_worker w2 $WFLAGS
start_wspush ws1
start_lighttpd
WS="ws://127.0.0.1:$WS_PORT_ws1/ws"

# ---- helpers -------------------------------------------------------------------
field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
ask() {         # ask CONTENT [CONVERSATION [AUTH-HEADER]]: "STATUS BODY" of POST /api/message
    body=$(jq -nc --arg c "$1" --arg v "${2:-}" 'if $v == "" then {content:$c} else {content:$c, conversation:$v} end')
    http POST /api/message -H "$J" ${3:+-H "$3"} -d "$body"
}
ended() { curl -s ${2:+-H "$2"} "$API/api/answer/$1" | grep -Eq '"status":"(done|error|cancelled)"'; }
answer() {      # answer ID [AUTH-HEADER]: the answer's whole text once it ended
    wait_until 20 ended "$1" "${2:-}" || { echo "(answer $1 did not end)"; return; }
    curl -s ${2:+-H "$2"} "$API/api/answer/$1" | jq -r '.status + " " + .content'
}
say() {         # say CONTENT [CONVERSATION]: asks, waits; sets ID, CONV, TEXT
    r=$(ask "$@")
    ID=$(field id "$r")
    CONV=$(field conversation "$r")
    TEXT=$(answer "$ID")
}
turns() { curl -s "$API/api/conversation/$1" | jq -c '[.turns[].question]'; }
K="${REDIS_PREFIX}conv:"

# ---- a new conversation, then its second turn ---------------------------------
r=$(ask "first question")
expect_match "a message without a conversation starts one; its id comes back" \
    '^200 \{"code":200,"message":"消息发送成功","id":"[0-9]+-[0-9]+","conversation":"[0-9a-f]{32}"\}$' "$r"
A=$(field conversation "$r")
expect_eq "its first answer has no history" "done Echo: first question" "$(answer "$(field id "$r")")"
say "second question" "$A"
expect_eq "the same conversation id comes back" "$A" "$CONV"
expect_eq "the second turn sees the first" \
    "done Echo: second question [history: 1 earlier turn(s), 0 image(s); previous question: first question]" "$TEXT"
g=$(curl -s "$API/api/conversation/$A")
expect_eq "GET /api/conversation/<id> returns the turns in order" \
    '["first question","second question"]' "$(printf '%s' "$g" | jq -c '[.turns[].question]')"
expect_eq "... with their whole answers, kinds and job ids" \
    "Echo: first question|text|$ID" "$(printf '%s' "$g" | jq -r '.turns[0].answer + "|" + .turns[1].kind + "|" + .turns[1].id')"
expect_eq "the turns are readable with redis-cli" "first question" "$(rcli LINDEX "${K}$A:turns" 0 | jq -r .question)"
check "the conversation expires (conversation_ttl)" sh -c "[ \$(redis-cli -p $REDIS_PORT TTL ${K}$A:turns) -gt 0 ] && [ \$(redis-cli -p $REDIS_PORT TTL ${K}$A:owner) -gt 0 ]"
expect_eq "no job of it is left on its queue" 0 "$(rcli LLEN "${K}$A:queue")"

# ---- trimming -------------------------------------------------------------------
say "q3" "$A"
say "q4" "$A"
say "q5" "$A"
expect_match "conversation_max_turns: the model gets the last 3 turns" \
    '^done Echo: q5 \[history: 3 earlier turn\(s\), 0 image\(s\); previous question: q4\]$' "$TEXT"
expect_eq "... and 3 are kept" '["q3","q4","q5"]' "$(turns "$A")"

X150=$(printf 'x%.0s' $(seq 150))
say "$X150"
B=$CONV
say "two" "$B"
expect_match "a turn that fits conversation_max_bytes is sent" 'history: 1 earlier turn' "$TEXT"
say "three" "$B"
expect_eq "conversation_max_bytes: the oldest whole turn that does not fit is left out" \
    "done Echo: three [history: 1 earlier turn(s), 0 image(s); previous question: two]" "$TEXT"
expect_eq "... though it is still stored" 3 "$(rcli LLEN "${K}$B:turns")"

# ---- only complete answers are stored -----------------------------------------
say "z1"
Z=$CONV
say "@@error=1 this answer breaks" "$Z"
expect_match "an answer that fails ..." '^error ' "$TEXT"
r=$(ask "@@delay=300 a slow answer to cancel one two three four" "$Z")
cid=$(field id "$r")
wait_until 10 sh -c "curl -s $API/api/answer/$cid | grep -q '\"status\":\"streaming\"'"
expect_match "... and one cancelled mid-answer ..." '^200 ' "$(http POST /api/cancel -H "$J" -d "{\"id\":\"$cid\"}")"
expect_match "(it ended cancelled)" '^cancelled ' "$(answer "$cid")"
say "z4" "$Z"
expect_eq "... are not part of the history: the next question sees the last complete turn" \
    "done Echo: z4 [history: 1 earlier turn(s), 0 image(s); previous question: z1]" "$TEXT"
expect_eq "... nor stored" '["z1","z4"]' "$(turns "$Z")"
expect_eq "every ended job left the conversation's queue" 0 "$(rcli LLEN "${K}$Z:queue")"

# ---- two questions at once: answered in order, by two workers -------------------
say "c1"
C=$CONV
r1=$(ask "@@delay=150 the first answer is slow one two three four five" "$C")
r2=$(ask "the second one" "$C")
id1=$(field id "$r1")
id2=$(field id "$r2")
t2=$(answer "$id2")
expect_eq "the second question of a conversation waits for the first's answer and sees it" \
    "done Echo: the second one [history: 2 earlier turn(s), 0 image(s); previous question: @@delay=150 the first answer is slow one two three four five]" "$t2"
expect_eq "the first answer is complete" \
    "done Echo: the first answer is slow one two three four five [history: 1 earlier turn(s), 0 image(s); previous question: c1]" "$(answer "$id1")"
by1=$(grep -h "job $id1: taken by" "$LOG_DIR"/*.log | sed 's/.*taken by \([^ ]*\).*/\1/')
by2=$(grep -h "job $id2: taken by" "$LOG_DIR"/*.log | sed 's/.*taken by \([^ ]*\).*/\1/')
check "the two questions were taken by different workers ($by1, $by2)" test -n "$by1" -a -n "$by2" -a "$by1" != "$by2"
expect_eq "the turns are stored in the order asked" \
    '["c1","@@delay=150 the first answer is slow one two three four five","the second one"]' "$(turns "$C")"

# ---- the worker answering the first question dies: the second goes on ------------
say "d1"
D=$CONV
r1=$(ask "@@delay=200 this answer will be cut short one two three four five six seven eight" "$D")
id1=$(field id "$r1")
wait_until 10 sh -c "curl -s $API/api/answer/$id1 | grep -q '\"status\":\"streaming\"'"
r2=$(ask "after the crash" "$D")
id2=$(field id "$r2")
pid=$(grep -h "job $id1: taken by" "$LOG_DIR"/*.log | sed 's/.*taken by [^ ]*-\([0-9]*\) .*/\1/')
if [ "$pid" = "$(pid_of w1)" ]; then dead=w1; else dead=w2; fi
stop $dead KILL
expect_match "the first answer, cut short by its worker's death, ends with an error" '^error ' "$(answer "$id1")"
expect_eq "the second question waited for it, and does not see it" \
    "done Echo: after the crash [history: 1 earlier turn(s), 0 image(s); previous question: d1]" "$(answer "$id2")"
start_worker $dead $WFLAGS

# ---- images: the model sees the image in its own turn only -----------------------
r=$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png" -F 'content=what is it?')
expect_match "POST /api/image starts a conversation too" '"conversation":"[0-9a-f]{32}"' "$r"
I=$(field conversation "$r")
expect_match "the image's own turn sees the image" '^done I see a PNG image' "$(answer "$(field id "$r")")"
r=$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png" -F "conversation=$I")
expect_match "POST /api/image continues a conversation" "^200 .*\"conversation\":\"$I\"" "$r"
answer "$(field id "$r")" > /dev/null
say "and now?" "$I"
expect_eq "later turns carry the text only (an image turn without a question: a placeholder)" \
    "done Echo: and now? [history: 2 earlier turn(s), 0 image(s); previous question: [图片 (image)]]" "$TEXT"
expect_eq "an image turn is stored as its kind and question" '["image","what is it?"]' \
    "$(curl -s "$API/api/conversation/$I" | jq -c '[.turns[0].kind, .turns[0].question]')"

# ---- refusals over HTTP --------------------------------------------------------
expect_match "a conversation that is not an id: 400" '^400 .*conversation id' "$(ask hi "not-an-id")"
expect_match "... not a string: 400" '^400 ' "$(http POST /api/message -H "$J" -d '{"content":"hi","conversation":5}')"
expect_match "... in an image upload: 400" '^400 ' "$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png" -F 'conversation=xyz')"
NOPE=0123456789abcdef0123456789abcdef
expect_match "an unknown conversation: 404, nothing queued" '^404 .*no such conversation' "$(ask hi "$NOPE")"
expect_eq "(no job was queued for it)" 0 "$(rcli XLEN "${REDIS_PREFIX}jobs")"
expect_match "GET of an unknown conversation: 404" '^404 ' "$(http GET /api/conversation/$NOPE)"
expect_match "GET of a bad id: 400" '^400 ' "$(http GET /api/conversation/xyz)"
expect_match "other methods: 405 naming both" 'Allow: GET, HEAD, DELETE' \
    "$(curl -s -i -X PUT "$API/api/conversation/$A" | tr -d '\r')"

# ---- over the WebSocket ---------------------------------------------------------
out=$(wsclient --url "$WS" --send '{"type":"text","content":"ws one"}' --wait 1 --timeout 20)
W=$(printf '%s\n' "$out" | grep '"type":"queued"' | sed -n 's/.*"conversation":"\([0-9a-f]*\)".*/\1/p')
expect_match "a socket's message starts a conversation; queued names it" '^[0-9a-f]{32}$' "$W"
out=$(wsclient --url "$WS" --send "{\"type\":\"text\",\"content\":\"ws two\",\"conversation\":\"$W\"}" --wait 1 --timeout 20)
expect_eq "a socket's message continues it" \
    "Echo: ws two [history: 1 earlier turn(s), 0 image(s); previous question: ws one]" \
    "$(printf '%s\n' "$out" | grep '"type":"text"' | jq -j .content)"
check "... and its queued frame names it" sh -c "printf '%s' '$out' | grep -q '\"type\":\"queued\".*\"conversation\":\"$W\"'"
out=$(wsclient --url "$WS" --send '{"type":"text","content":"x","conversation":"bad"}' \
    --send "{\"type\":\"text\",\"content\":\"x\",\"conversation\":\"$NOPE\"}" \
    --send '{"type":"text","content":"ok"}' --wait 1 --timeout 20)
expect_match "a bad conversation id gets an error frame" '"type":"error","content":"conversation .*32 hex digits' "$out"
expect_match "an unknown one an error frame with code 404" '"type":"error","code":404,"content":"[^"]*no such conversation' "$out"

# ---- DELETE -----------------------------------------------------------------------
expect_match "DELETE /api/conversation/<id> forgets it" '^200 ' "$(http DELETE /api/conversation/$A)"
expect_eq "its keys are gone" 0 "$(rcli EXISTS "${K}$A:owner" "${K}$A:turns" "${K}$A:queue")"
expect_match "then GET: 404" '^404 ' "$(http GET /api/conversation/$A)"
expect_match "and continuing it: 404" '^404 ' "$(ask again "$A")"
expect_match "DELETE again: 404" '^404 ' "$(http DELETE /api/conversation/$A)"

# ---- one conversation's backlog: at most conversation_max_queued (4) questions, and
# ---- they do not stop the worker reading others' jobs; DELETE while they wait --------
# one worker, two model slots: the slow first answer takes one, the other must
# stay free for the rest of the service while three questions wait behind it
stop w1
stop w2
start_worker w3 --worker-concurrency 2 --worker-claim-idle-ms 1500
streaming() { curl -s "$API/api/answer/$1" | grep -q '"status":"streaming"'; }
SLOW="@@delay=300 a slow first answer one two three four five six seven eight nine ten eleven twelve"
say "e0"
E=$CONV
r=$(ask "$SLOW" "$E")
e1=$(field id "$r")
wait_until 10 streaming "$e1"
e2=$(field id "$(ask e2 "$E")")
ask e3 "$E" > /dev/null
ask e4 "$E" > /dev/null
n=$(rcli XLEN "${REDIS_PREFIX}jobs")
expect_match "a conversation with 4 unanswered questions refuses a fifth: 429 (conversation_max_queued)" \
    '^429 .*conversation_max_queued' "$(ask e5 "$E")"
out=$(wsclient --url "$WS" --send "{\"type\":\"text\",\"content\":\"e5\",\"conversation\":\"$E\"}" \
    --send '{"type":"text","content":"ok"}' --wait 1 --timeout 20)
expect_match "... over the socket: an error frame with code 429" \
    '"type":"error","code":429,"content":"[^"]*conversation_max_queued' "$out"
expect_eq "(nothing was queued for them)" "$n" "$(rcli XLEN "${REDIS_PREFIX}jobs")"
say "meanwhile"
expect_match "a question of another conversation is answered while that backlog waits ..." '^done Echo: meanwhile' "$TEXT"
check "... before the slow answer it waits for ended" streaming "$e1"
expect_match "DELETE of a conversation with questions waiting: 200" '^200 ' "$(http DELETE /api/conversation/$E)"
expect_eq "it deletes owner and turns, not the queue (it drains by itself)" "0 1" \
    "$(rcli EXISTS "${K}$E:owner" "${K}$E:turns") $(rcli EXISTS "${K}$E:queue")"
answer "$e2" > /dev/null
check "the questions waiting still go in order: the second ended after the first" ended "$e1"

# a question's turn renews the conversation's keys: they outlast its answer
say "g0"
G=$CONV
r=$(ask "$SLOW" "$G")
g1=$(field id "$r")
wait_until 10 streaming "$g1"
g2=$(field id "$(ask "@@delay=300 the second one is slow too one two three" "$G")")
for s in owner turns queue; do rcli PEXPIRE "${K}$G:$s" 30000 > /dev/null; done
http POST /api/cancel -H "$J" -d "{\"id\":\"$g1\"}" > /dev/null
wait_until 10 streaming "$g2"
check "when a question's turn comes its conversation's TTL is renewed (conversation_ttl)" sh -c \
    "[ \$(redis-cli -p $REDIS_PORT TTL ${K}$G:owner) -gt 60 ] && [ \$(redis-cli -p $REDIS_PORT TTL ${K}$G:turns) -gt 60 ]"
answer "$g2" > /dev/null

# a worker told to stop leaves a job waiting for its turn pending, for another worker
say "h0"
H=$CONV
r=$(ask "@@delay=100 a short first answer one two three four five" "$H")
h1=$(field id "$r")
wait_until 10 streaming "$h1"
h2=$(field id "$(ask "h2" "$H")")
wait_until 10 sh -c "grep -q 'job $h2: taken by' '$LOG_DIR'/*.log"
stop w3
expect_match "a stopping worker does not answer a job waiting for its turn (it finishes the running one)" \
    '"status":"queued"' "$(curl -s "$API/api/answer/$h2")"
expect_match "(the running one)" '^done ' "$(answer "$h1")"
start_worker w1 $WFLAGS
start_worker w2 $WFLAGS
expect_eq "another worker answers it, after the first" \
    "done Echo: h2 [history: 2 earlier turn(s), 0 image(s); previous question: @@delay=100 a short first answer one two three four five]" \
    "$(answer "$h2")"

# ---- with authentication: a conversation is its user's -------------------------------
printf 'auth_jwt_secret: "%s"\n' "$SECRET" > "$CONFIG"
kill "$(cat "$T/run/lighttpd.pid")"
wait_until 10 fcgi_count_is 0 || fail "lighttpd stops its fcgi-api processes"
rm -f "$T/run/lighttpd.pid"
start_lighttpd
token() { "$BIN/aimsg-token" --sub "$1" --ttl 600 ${2:+"$2"} 2> /dev/null; }
ALICE="Authorization: Bearer $(token alice)"
BOB="Authorization: Bearer $(token bob)"
ROOTT="Authorization: Bearer $(token root --admin)"
r=$(ask "alice asks" "" "$ALICE")
U=$(field conversation "$r")
expect_match "alice starts a conversation" '^200 ' "$r"
answer "$(field id "$r")" "$ALICE" > /dev/null
expect_eq "its owner is alice" "user:alice" "$(rcli GET "${K}$U:owner")"
r=$(ask "alice again" "$U" "$ALICE")
expect_match "alice continues it" "^200 .*\"conversation\":\"$U\"" "$r"
expect_match "... seeing her turn" 'previous question: alice asks' "$(answer "$(field id "$r")" "$ALICE")"
expect_match "alice reads it" '^200 .*alice again' "$(http GET /api/conversation/$U -H "$ALICE")"
expect_match "bob cannot read it: 404" '^404 ' "$(http GET /api/conversation/$U -H "$BOB")"
expect_match "bob cannot continue it: 404" '^404 ' "$(ask "bob butts in" "$U" "$BOB")"
expect_match "bob cannot forget it: 404" '^404 ' "$(http DELETE /api/conversation/$U -H "$BOB")"
expect_eq "(it is still there, with alice's two turns)" 2 "$(rcli LLEN "${K}$U:turns")"
expect_match "an admin may read it" '^200 .*alice asks' "$(http GET /api/conversation/$U -H "$ROOTT")"
expect_match "without a token: 401" '^401 ' "$(http GET /api/conversation/$U)"
expect_match "alice forgets it" '^200 ' "$(http DELETE /api/conversation/$U -H "$ALICE")"

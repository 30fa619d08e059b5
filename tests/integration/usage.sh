# Token usage (issue 15): the worker asks the model for usage in the stream
# (stream_options.include_usage), the done frame carries what it reported,
# and the script that writes the done frame counts the answer and its tokens
# per user and day in Redis; GET /api/usage reads them (the caller's own, or
# everyone's for an admin). An endpoint that refuses stream_options (the
# stand-in's @@nostreamoptions: a 400 naming it) is asked again at once
# without it, and this worker never sends it again (to that endpoint: the
# fallback is remembered apart).
# The stand-in counts prompt_tokens = the question's words + 1 and
# completion_tokens = its answer's tokens ("Echo: one two three" is 4).
. "$(dirname "$0")/../lib.sh"

SECRET="usage-test-secret-$$"
J='Content-Type: application/json'

start_redis
LOG_LEVEL=debug STANDIN_DELAY_MS=0 start_standin   # its debug lines show what it was asked
start_worker w1
start_wspush ws1
start_lighttpd
WS="ws://127.0.0.1:$WS_PORT_ws1/ws"

bearer() { printf 'Authorization: Bearer %s' "$1"; }
token() { "$BIN/aimsg-token" --sub "$1" --ttl 600 ${2:+"$2"} 2> /dev/null; }
ask() {         # ask CONTENT [TOKEN]: "STATUS BODY" of POST /api/message
    http POST /api/message -H "$J" ${2:+-H "$(bearer "$2")"} -d "$(jq -nc --arg c "$1" '{content:$c}')"
}
id_of() { printf '%s' "$1" | sed -n 's/.*"id":"\([0-9]*-[0-9]*\)".*/\1/p'; }
ended() { curl -s ${2:+-H "$(bearer "$2")"} "$API/api/answer/$1" | grep -Eq '"status":"(done|error|cancelled)"'; }
last_frame() {  # last_frame ID [TOKEN]: the frame that ended answer ID
    wait_until 20 ended "$1" "${2:-}" || { echo "(answer $1 did not end)"; return; }
    rcli --raw XREVRANGE "${REDIS_PREFIX}answer:$1" + - COUNT 1 | grep '^{'
}
asked() {       # asked QUESTION: the stand-in's stream_options=N of each request for it
    grep -h "POST /v1/chat/completions .*question=\"$1\"" "$LOG_DIR"/*.log | sed -n 's/.* stream_options=\([01]\) .*/\1/p' | tr -d '\n'
}
counts() {      # counts MEMBER: "prompt completion answers" of today
    rcli HMGET "${REDIS_PREFIX}usage:$DAY:$1" prompt_tokens completion_tokens answers | tr '\n' ' ' | sed 's/ $//'
}
usage_of() { http GET /api/usage ${1:+-H "$(bearer "$1")"}; }
row() {         # row USER-JSON P C A: one row of GET /api/usage's list, today
    printf '{"day":"%s","user":%s,"prompt_tokens":%s,"completion_tokens":%s,"answers":%s}' "$DAY" "$1" "$2" "$3" "$4"
}

# ---- the done frame ------------------------------------------------------------
r=$(ask "one two three")
id=$(id_of "$r")
expect_match "the done frame carries the usage the model reported" \
    '^\{"type":"done",.*"fallback":false,"usage":\{"prompt_tokens":4,"completion_tokens":4\}\}$' "$(last_frame "$id")"
expect_eq "... which the worker asked for (stream_options.include_usage)" 1 "$(asked "one two three")"
out=$(wsclient --url "$WS" --send '{"type":"text","content":"@@tokens=5 x"}' --wait 1 --timeout 20)
expect_match "... over a socket too" '"type":"done".*"usage":\{"prompt_tokens":3,"completion_tokens":5\}\}' "$out"
r=$(ask "@@plain p q")
expect_match "... and from a non-streamed completion's usage" \
    '"usage":\{"prompt_tokens":4,"completion_tokens":3\}\}$' "$(last_frame "$(id_of "$r")")"
r=$(ask "@@fail=400 refused")
expect_match "a 400 that does not name stream_options is an error as before (not retried without it)" \
    '^\{"type":"error"' "$(last_frame "$(id_of "$r")")"
expect_eq "... asked once" 1 "$(asked "@@fail=400 refused")"

# ---- the counts in Redis (without authentication: one member, anonymous) -----
DAY=$(rcli --scan --pattern "${REDIS_PREFIX}usage:????-??-??" | sed "s/^${REDIS_PREFIX}usage://")
expect_eq "the counts are kept under today's date (UTC)" "$(date -u +%F)" "$DAY"
expect_eq "... the day's members: anonymous (no authentication)" anonymous "$(rcli SMEMBERS "${REDIS_PREFIX}usage:$DAY")"
expect_eq "... its prompt tokens, completion tokens and answers (an error is not counted)" "11 12 3" "$(counts anonymous)"
ttl=$(rcli TTL "${REDIS_PREFIX}usage:$DAY:anonymous")
check "... kept usage_days (7) days after the last answer" test "$ttl" -gt $((7 * 86400 - 60)) -a "$ttl" -le $((7 * 86400))
check "... the day's set too" test "$(rcli TTL "${REDIS_PREFIX}usage:$DAY")" -gt $((7 * 86400 - 60))
expect_eq "GET /api/usage without authentication: the anonymous counts (user null)" \
    "200 {\"usage\":[$(row null 11 12 3)]}" "$(usage_of)"

# ---- an endpoint refusing stream_options -----------------------------------------
r=$(ask "@@nostreamoptions hello there")
id=$(id_of "$r")
f=$(last_frame "$id")
expect_match "an endpoint refusing stream_options (400): the answer still arrives" '^\{"type":"done"' "$f"
expect_eq "... whole" "Echo: hello there" "$(curl -s "$API/api/answer/$id" | jq -r .content)"
check "... without usage" sh -c "! printf '%s' '$f' | grep -q usage"
expect_eq "... asked with it, then once again without" 10 "$(asked "@@nostreamoptions hello there")"
check "... the worker says why" grep -q "job $id: HTTP 400: Unrecognized request argument supplied: stream_options.*asking again without it" "$LOG_DIR"/*.log
r=$(ask "the next question")
f=$(last_frame "$(id_of "$r")")
expect_eq "the next job is asked without stream_options" 0 "$(asked "the next question")"
check "... so its done frame has no usage" sh -c "printf '%s' '$f' | grep -q '^{\"type\":\"done\"' && ! printf '%s' '$f' | grep -q usage"
expect_eq "answers without usage count as answers, without tokens" "11 12 5" "$(counts anonymous)"

# ---- per user, with authentication -----------------------------------------------
printf 'auth_jwt_secret: "%s"\n' "$SECRET" > "$CONFIG"
stop w1
start_worker w2             # a new process asks for usage again
stop_lighttpd
start_lighttpd
ALICE=$(token alice)
BOB=$(token bob)
ADMIN=$(token root --admin)
f=$(last_frame "$(id_of "$(ask "a b c" "$ALICE")")" "$ALICE")
expect_match "a new worker process asks for usage again" '"usage":\{"prompt_tokens":4,"completion_tokens":4\}\}$' "$f"
last_frame "$(id_of "$(ask "@@tokens=3 y" "$ALICE")")" "$ALICE" > /dev/null
last_frame "$(id_of "$(ask "hi" "$BOB")")" "$BOB" > /dev/null
expect_eq "alice's counts in Redis (user:alice)" "7 7 2" "$(counts user:alice)"
expect_eq "bob's" "2 2 1" "$(counts user:bob)"
expect_eq "the day's members" "anonymous user:alice user:bob" "$(rcli SMEMBERS "${REDIS_PREFIX}usage:$DAY" | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "GET /api/usage: alice's own" "200 {\"usage\":[$(row '"alice"' 7 7 2)]}" "$(usage_of "$ALICE")"
expect_eq "... bob's own" "200 {\"usage\":[$(row '"bob"' 2 2 1)]}" "$(usage_of "$BOB")"
expect_eq "... an admin: everyone's" "200 {\"usage\":[$(row null 11 12 5),$(row '"alice"' 7 7 2),$(row '"bob"' 2 2 1)]}" "$(usage_of "$ADMIN")"
expect_match "... a user without counts: none" '^200 \{"usage":\[\]\}$' "$(usage_of "$(token carol)")"
expect_match "... without a token: 401" '^401 \{"code":401' "$(usage_of)"
expect_match "... with a bad token: 401" '^401 \{"code":401' "$(usage_of "not.a.token")"

# ---- the primary and the fallback are remembered apart ---------------------------
# (the stand-in plays both: @@failfor fails the primary's model only)
stop w2
start_worker w3 --ai-model m-main --ai-retries 0 \
    --ai-fallback-base-url "http://127.0.0.1:$STANDIN_PORT/v1" --ai-fallback-model m-fb
q="@@nostreamoptions @@failfor=m-main @@fail=503 both refuse it"
f=$(last_frame "$(id_of "$(ask "$q" "$ALICE")")" "$ALICE")
expect_match "a primary and a fallback both refusing stream_options: the fallback answers" \
    '^\{"type":"done",.*"model":"m-fb","fallback":true\}$' "$f"
expect_eq "... each was asked with it once, then without (the primary's refusal is not the fallback's)" \
    1010 "$(asked "$q")"

# ---- a refusal in another shape (a FastAPI server: 422, detail[].loc) -------------
stop w3
start_worker w4
q="@@nostreamoptions=422 shaped otherwise"
f=$(last_frame "$(id_of "$(ask "$q" "$ALICE")")" "$ALICE")
expect_match "an endpoint refusing stream_options with a 422 (pydantic body): the answer arrives" \
    '^\{"type":"done"' "$f"
expect_eq "... asked with it, then once again without" 10 "$(asked "$q")"

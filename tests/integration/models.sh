# Models (issue 15): a client may ask for one of ai_models ("model"; the
# first is the default, anything else is refused); when the primary endpoint
# fails before the first token (5xx, 429, a connect error, after its
# retries) the fallback endpoint answers, and the done frame says which;
# after the first token the endpoint never changes. (Every done frame also
# carries the usage the stand-in reports: usage.sh.) A rejected key is
# logged once per endpoint, as the endpoint's that rejected it.
# One stand-in plays both endpoints: @@failfor=MODEL makes its @@fail apply
# to the requests for that model only, and the fallback asks for another
# model (ai_fallback_model) than the primary.
. "$(dirname "$0")/../lib.sh"

J='Content-Type: application/json'

start_redis
start_standin
# every program reads the settings file (fcgi-api gets no other environment)
cat > "$CONFIG" <<EOF
ai_models: [m-main, m-other]
ai_fallback_base_url: "http://127.0.0.1:$STANDIN_PORT/v1"
ai_fallback_model: m-fallback
ai_retries: 1
EOF
start_worker w1
start_wspush ws1
start_lighttpd
WS="ws://127.0.0.1:$WS_PORT_ws1/ws"

field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
ask() {         # ask CONTENT [MODEL]: "STATUS BODY" of POST /api/message
    body=$(jq -nc --arg c "$1" --arg m "${2:-}" 'if $m == "" then {content:$c} else {content:$c, model:$m} end')
    http POST /api/message -H "$J" -d "$body"
}
ended() { curl -s "$API/api/answer/$1" | grep -Eq '"status":"(done|error|cancelled)"'; }
last_frame() {  # last_frame ID: the frame that ended answer ID
    wait_until 20 ended "$1" || { echo "(answer $1 did not end)"; return; }
    rcli --raw XREVRANGE "${REDIS_PREFIX}answer:$1" + - COUNT 1 | grep '^{'
}
text_of() { curl -s "$API/api/answer/$1" | jq -r .content; }
id_of() { field id "$1"; }

# ---- which model ---------------------------------------------------------------------
r=$(ask "hello")
f=$(last_frame "$(id_of "$r")")
expect_match "without \"model\" the first of ai_models answers; the done frame says so" \
    '^\{"type":"done",.*"model":"m-main","fallback":false,"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+\}\}$' "$f"
r=$(ask "hello other" m-other)
expect_match "\"model\": one of ai_models is asked for" '"model":"m-other","fallback":false' "$(last_frame "$(id_of "$r")")"
r=$(ask "@@failfor=m-other @@fail=400 only the other model fails" m-other)
expect_match "... it is the model the endpoint gets (a failure meant for it happens)" '^\{"type":"error"' "$(last_frame "$(id_of "$r")")"
r=$(ask "@@failfor=m-other @@fail=400 only the other model fails" m-main)
expect_match "... and not for the default" '^\{"type":"done"' "$(last_frame "$(id_of "$r")")"
expect_match "a model not in ai_models: 400" '^400 .*unknown \\"model\\"' "$(ask "hi" gpt-5)"
expect_match "... not a string: 400" '^400 ' "$(http POST /api/message -H "$J" -d '{"content":"hi","model":1}')"
expect_match "... in an image upload: 400" '^400 ' \
    "$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png" -F 'model=gpt-5')"
r=$(http POST /api/image -F "image=@$ROOT/tests/fixtures/pixel.png" -F 'model=m-other')
expect_match "an image upload may name one" '^200 ' "$r"
# (its answer goes to every socket: it must end before the next client
# joins, or that client could take its done frame for its own)
wait_until 20 ended "$(id_of "$r")"
out=$(wsclient --url "$WS" --send '{"type":"text","content":"x","model":"gpt-5"}' \
    --send '{"type":"text","content":"over the socket","model":"m-other"}' --wait 1 --timeout 20)
expect_match "over a socket: an unknown model gets an error frame" '"type":"error","content":"[^"]*unknown \\"model\\"' "$out"
expect_eq "(nothing else was queued)" 1 "$(printf '%s\n' "$out" | grep -c '"type":"queued"')"
mine=$(printf '%s\n' "$out" | grep '"type":"queued"' | jq -r .id)
expect_match "... a listed one is answered by it" "\"type\":\"done\",\"id\":\"$mine\".*\"model\":\"m-other\",\"fallback\":false" "$out"

# ---- the fallback ---------------------------------------------------------------------
r=$(ask "@@failfor=m-main @@fail=503 the primary is down")
id=$(id_of "$r")
expect_match "a primary failing with 5xx (after its retries): the fallback answers" \
    '"model":"m-fallback","fallback":true,"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+\}\}$' "$(last_frame "$id")"
expect_eq "... the whole answer" "Echo: the primary is down" "$(text_of "$id")"
check "... and it is logged" grep -q "job $id: answered by m-fallback at the fallback endpoint" "$LOG_DIR"/*.log
check "... after the primary's retry" grep -q "job $id: HTTP 503.*retry 1/1" "$LOG_DIR"/*.log
r=$(ask "@@failfor=m-main @@fail=429 the primary is busy")
expect_match "a primary answering 429 (after its retries): the fallback answers" \
    '"model":"m-fallback","fallback":true,"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+\}\}$' "$(last_frame "$(id_of "$r")")"
r=$(ask "@@failfor=m-main @@fail=503*1 the primary comes back")
expect_match "a primary that recovers within its retries answers itself" \
    '"model":"m-main","fallback":false,"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+\}\}$' "$(last_frame "$(id_of "$r")")"
r=$(ask "@@cut=2 one two three four five")
id=$(id_of "$r")
expect_match "a primary cut after its first tokens: the answer ends with an error" '^\{"type":"error"' "$(last_frame "$id")"
expect_eq "... after the tokens it sent" "Echo: one " "$(text_of "$id")"
check "... and the fallback is never asked" sh -c "! grep -q 'job $id: .*asking the fallback' $LOG_DIR/*.log"

# a primary nobody listens on: connection refused
stop w1
CLOSED=$(free_port)
start_worker w2 --ai-base-url "http://127.0.0.1:$CLOSED/v1"
r=$(ask "nobody home")
id=$(id_of "$r")
expect_match "a primary that cannot be reached: the fallback answers" \
    '"model":"m-fallback","fallback":true,"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+\}\}$' "$(last_frame "$id")"
expect_eq "... the whole answer" "Echo: nobody home" "$(text_of "$id")"
out=$(wsclient --url "$WS" --send '{"type":"text","content":"socket via fallback"}' --wait 1 --timeout 20)
expect_match "the socket's done frame says so too" '"type":"done".*"model":"m-fallback","fallback":true,"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+\}\}' "$out"

# ---- a rejection (401/403) is logged for the endpoint that sent it, once per endpoint ----
# a second stand-in that wants an API key the worker does not send plays the fallback
stop w2
KEYED=$(free_port)
spawn standin2 env STANDIN_PORT="$KEYED" STANDIN_REQUIRE_KEY=models-test-key "$BIN/ai-standin"
wait_until 10 port_open "$KEYED" || fail "the second stand-in starts"
start_worker w3 --ai-fallback-base-url "http://127.0.0.1:$KEYED/v1"
r=$(ask "@@failfor=m-main @@fail=503 the fallback rejects us")
expect_match "a fallback rejecting our key ends the answer with an error" '^\{"type":"error"' "$(last_frame "$(id_of "$r")")"
check "... logged as the fallback's, naming its options" grep -q \
    "the model endpoint http://127.0.0.1:$KEYED/v1 rejected us .*check ai_fallback_api_key and ai_fallback_base_url" "$LOG_DIR"/*.log
r=$(ask "@@fail=401 then the primary rejects us")
id=$(id_of "$r")
expect_match "a primary rejecting us then ends the answer with an error" '^\{"type":"error"' "$(last_frame "$id")"
check "... logged too, as the primary's (the fallback's report does not hide it)" sh -c \
    "cat '$LOG_DIR'/*.log | sed -n '/job $id: taken by/,\$p' | grep -q 'the model endpoint http://127.0.0.1:$STANDIN_PORT/v1 rejected us .*check ai_api_key and ai_base_url'"

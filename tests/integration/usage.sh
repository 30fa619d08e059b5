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
expect_eq "... the day's members, a sorted set of scores 0: anonymous (no authentication)" \
    "anonymous 0" "$(rcli ZRANGE "${REDIS_PREFIX}usage:$DAY" 0 -1 WITHSCORES | tr '\n' ' ' | sed 's/ $//')"
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
expect_eq "the day's members, in byte order" "anonymous user:alice user:bob" "$(rcli ZRANGE "${REDIS_PREFIX}usage:$DAY" 0 -1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "GET /api/usage: alice's own" "200 {\"usage\":[$(row '"alice"' 7 7 2)]}" "$(usage_of "$ALICE")"
expect_eq "... bob's own" "200 {\"usage\":[$(row '"bob"' 2 2 1)]}" "$(usage_of "$BOB")"
expect_eq "... an admin: everyone's" "200 {\"usage\":[$(row null 11 12 5),$(row '"alice"' 7 7 2),$(row '"bob"' 2 2 1)]}" "$(usage_of "$ADMIN")"
expect_match "... a user without counts: none" '^200 \{"usage":\[\]\}$' "$(usage_of "$(token carol)")"
expect_match "... without a token: 401" '^401 \{"code":401' "$(usage_of)"
expect_match "... with a bad token: 401" '^401 \{"code":401' "$(usage_of "not.a.token")"

# ---- pages: ?limit=, ?cursor=, ?day= ----------------------------------------------
# Earlier days seeded as the worker counts (a hash per member, the day's
# members in a sorted set), some 400 rows with today's three: added in
# another order than byte order, one sub needing escapes in a URL, a day
# past usage_days (7), and a day counted by an older version (a plain set).
day_ago() { date -u -d "$DAY - $1 days" +%F; }
D1=$(day_ago 1) D2=$(day_ago 2) D3=$(day_ago 3) D5=$(day_ago 5) D6=$(day_ago 6) D7=$(day_ago 7)
seed() {        # seed DAY MEMBER P C A [set]: the commands counting them, and the row
    h="${REDIS_PREFIX}usage:$1:$2" d="${REDIS_PREFIX}usage:$1"
    printf 'HSET "%s" prompt_tokens %s completion_tokens %s answers %s\n' "$h" "$3" "$4" "$5"
    if [ "${6:-}" = set ]; then printf 'SADD "%s" "%s"\n' "$d" "$2"; else printf 'ZADD "%s" 0 "%s"\n' "$d" "$2"; fi
    printf 'PEXPIRE "%s" 259200000\nPEXPIRE "%s" 259200000\n' "$h" "$d"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$T/seeded"
}
{
    for i in $(seq 1 250); do seed "$D1" "user:u$((i * 37 % 1009))" "$i" $((2 * i)) $((i % 5 + 1)); done
    seed "$D1" "user:a b/c+d&e=f?%" 5 6 7
    seed "$D1" anonymous 8 9 10
    for i in $(seq 1 120); do seed "$D2" "user:v$((i * 53 % 1009))" $((i + 1)) "$i" 1; done
    seed "$D2" user:alice 30 40 3
    for i in $(seq 1 30); do seed "$D3" "user:w$i" 1 1 1; done
    seed "$D5" user:zed 3 3 1 set
    seed "$D5" anonymous 2 2 1 set
    seed "$D5" user:amy 1 1 1 set
    seed "$D6" user:last 1 2 3
    seed "$D7" user:gone 1 1 1
    seed "$D7" anonymous 1 1 1
} > "$T/seed.redis"
rcli < "$T/seed.redis" > /dev/null
# what every page together must hold: newest day first, members in byte order
printf '%s\tanonymous\t11\t12\t5\n%s\tuser:alice\t7\t7\t2\n%s\tuser:bob\t2\t2\t1\n' "$DAY" "$DAY" "$DAY" >> "$T/seeded"
grep -v "^$D7" "$T/seeded" | LC_ALL=C sort -t "$(printf '\t')" -k1,1r -k2,2 |
    jq -R -c 'split("\t") | {day: .[0], user: (if .[1] == "anonymous" then null else .[1][5:] end),
              prompt_tokens: (.[2] | tonumber), completion_tokens: (.[3] | tonumber), answers: (.[4] | tonumber)}' \
    > "$T/expected"
ROWS=$(wc -l < "$T/expected")

pages() {       # pages TOKEN QUERY: GET /api/usage?QUERY, then each next: $T/rows, and a line per page in $T/pages
    : > "$T/rows"; : > "$T/pages"
    cursor=""
    for _ in $(seq 1 200); do
        r=$(http GET "/api/usage?$2${cursor:+&cursor=$cursor}" -H "$(bearer "$1")")
        [ "${r%% *}" = 200 ] || { echo "$r"; return 1; }
        printf '%s' "${r#* }" | jq -c '.usage[]' >> "$T/rows"
        cursor=$(printf '%s' "${r#* }" | jq -r '.next // empty')
        echo "$(printf '%s' "${r#* }" | jq '.usage | length')${cursor:+ next}" >> "$T/pages"
        [ -n "$cursor" ] || return 0
    done
    echo "(no last page)"; return 1
}
sizes() {       # sizes LIMIT: the page sizes of ROWS rows, LIMIT a page
    for _ in $(seq 1 $(( (ROWS - 1) / $1 ))); do echo "$1 next"; done
    echo $(( (ROWS - 1) % $1 + 1 ))
}
check "$ROWS rows over 7 days, 100 a page (an admin): every row once, in order" pages "$ADMIN" limit=100
check "... exactly" diff "$T/expected" "$T/rows"
expect_eq "... 100 rows a page, next on each but the last" "$(sizes 100)" "$(cat "$T/pages")"
check "7 a page (pages across days)" pages "$ADMIN" limit=7
check "... every row once, in order" diff "$T/expected" "$T/rows"
expect_eq "... 7 a page, next on each but the last" "$(sizes 7)" "$(cat "$T/pages")"
expect_eq "the plain set of a day counted by an older version was read, and is a sorted set now" \
    zset "$(rcli TYPE "${REDIS_PREFIX}usage:$D5")"
check "... keeping its expiry" test "$(rcli PTTL "${REDIS_PREFIX}usage:$D5")" -gt 250000000
r=$(usage_of "$ADMIN")
expect_eq "without parameters: the first 100 rows, and a next" "100 true" \
    "$(printf '%s' "${r#* }" | jq -r '"\(.usage | length) \(.next != null)"')"
expect_eq "... the same page as ?limit=100" "$(head -100 "$T/expected")" "$(printf '%s' "${r#* }" | jq -c '.usage[]')"
check "1000 a page: every row on one page" pages "$ADMIN" limit=1000
expect_eq "... without next" "$ROWS" "$(cat "$T/pages")"
first=$(usage_of "$ADMIN" | sed 's/.*"next":"\([^"]*\)".*/\1/')
rcli CONFIG RESETSTAT > /dev/null
r=$(http GET "/api/usage?limit=5&cursor=$first" -H "$(bearer "$ADMIN")")
expect_eq "a page of 5 (the second of the default's): 5 rows" 5 "$(printf '%s' "${r#* }" | jq '.usage | length')"
stats=$(rcli INFO commandstats)
calls() { printf '%s' "$stats" | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"; }
expect_eq "... read in Redis with 5 HMGETs and 6 ZRANGEBYLEX at most (no SMEMBERS)" "5 yes -" \
    "$(calls hmget) $([ "$(calls zrangebylex)" -le 6 ] && echo yes) $(calls smembers)-"

LIMIT_BAD='{"code":400,"message":"limit 必须是 1 到 1000 之间的整数 (\"limit\" must be an integer from 1 to 1000)"}'
CURSOR_BAD='{"code":400,"message":"cursor 无效，请原样传回上一页的 next (\"cursor\" must be a \"next\" of a previous page, as given)"}'
for v in 0 1001 -5 abc 10x '' '%zz'; do
    expect_eq "limit=$v: 400, why" "400 $LIMIT_BAD" "$(http GET "/api/usage?limit=$v" -H "$(bearer "$ADMIN")")"
done
addr=$(printf '%saddr:127.0.0.1' "$D1" | base64 | tr '+/' '-_' | tr -d '=')
for v in 'not!a!cursor' '%zz' AAAA "$addr" ''; do
    expect_eq "cursor=$v: 400, why" "400 $CURSOR_BAD" "$(http GET "/api/usage?cursor=$v" -H "$(bearer "$ADMIN")")"
done
expect_match "day=2026-13-01: 400, why" '^400 \{"code":400,"message":"day .*\(\\"day\\" must be a date: YYYY-MM-DD\)"\}$' \
    "$(http GET "/api/usage?day=2026-13-01" -H "$(bearer "$ADMIN")")"
check "day=$D2: that day's rows" pages "$ADMIN" "day=$D2&limit=50"
expect_eq "... exactly" "$(grep "\"day\":\"$D2\"" "$T/expected")" "$(cat "$T/rows")"
check "day=$D7 (past usage_days): none" pages "$ADMIN" "day=$D7"
expect_eq "... on one page" 0 "$(cat "$T/pages")"

check "alice, 1 a page: her own rows" pages "$ALICE" limit=1
expect_eq "... only" "$(grep '"user":"alice"' "$T/expected")" "$(cat "$T/rows")"
expect_eq "... a page each, next on the first" "$(printf '1 next\n1')" "$(cat "$T/pages")"
r=$(http GET "/api/usage?cursor=$first" -H "$(bearer "$ALICE")")
expect_eq "... with an admin's cursor (after a row of $D1): still her own, those after it" \
    "200 {\"usage\":[$(grep '"user":"alice"' "$T/expected" | grep "$D2")]}" "$r"
check "bob: his own" pages "$BOB" limit=1
expect_eq "... only" "$(grep '"user":"bob"' "$T/expected")" "$(cat "$T/rows")"

# today's members as an older version kept them (a plain set): the worker
# makes it a sorted set when it counts the next answer
d="${REDIS_PREFIX}usage:$DAY"
rcli EVAL "local m = redis.call('ZRANGE', KEYS[1], 0, -1); redis.call('DEL', KEYS[1]);
           redis.call('SADD', KEYS[1], unpack(m)); redis.call('PEXPIRE', KEYS[1], 600000)" 1 "$d" > /dev/null
expect_eq "(today's members as an older version kept them)" set "$(rcli TYPE "$d")"
last_frame "$(id_of "$(ask "hi" "$BOB")")" "$BOB" > /dev/null
expect_eq "the worker counting into a plain set makes it a sorted set of the same members" \
    "zset anonymous user:alice user:bob" "$(rcli TYPE "$d") $(rcli ZRANGE "$d" 0 -1 | tr '\n' ' ' | sed 's/ $//')"
check "... which expires usage_days after the answer, as before" test "$(rcli TTL "$d")" -gt $((7 * 86400 - 60))
expect_eq "... bob counted" "4 4 2" "$(counts user:bob)"

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

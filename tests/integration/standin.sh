# The AI stand-in speaks the OpenAI chat-completions protocol: SSE streams,
# plain JSON completions, image parts, errors, the usage chunk
# (stream_options.include_usage), and the test directives.
. "$(dirname "$0")/../lib.sh"

start_standin
U="http://127.0.0.1:$STANDIN_PORT/v1/chat/completions"
J='Content-Type: application/json'
chat() { curl -s -N "$U" -H "$J" -d "$1"; }

out=$(chat '{"model":"m","stream":true,"messages":[{"role":"system","content":"be nice"},{"role":"user","content":"hello big world"}]}')
expect_match "stream is server-sent events" '^: ' "$out"
expect_eq "one data event per token plus role, finish and DONE" 7 "$(printf '%s\n' "$out" | grep -c '^data: ')"
expect_eq "stream ends with [DONE]" "data: [DONE]" "$(printf '%s\n' "$out" | grep '^data: ' | tail -1)"
expect_eq "deltas echo the last user message" "Echo: hello big world" \
    "$(printf '%s\n' "$out" | grep -o '"content":"[^"]*"' | sed 's/"content":"//; s/"$//' | tr -d '\n')"
expect_match "chunks name the model" '"object":"chat.completion.chunk".*"model":"m"' "$out"
expect_match "the last chunk has finish_reason stop" '"finish_reason":"stop"' "$out"
check "content type is text/event-stream" sh -c "curl -s -D - -o /dev/null $U -H '$J' -d '{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}' | grep -qi '^content-type: text/event-stream'"

out=$(chat '{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count these words"}]}')
expect_eq "stream_options.include_usage: a last chunk with the usage and no choices, before [DONE]" \
    '{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":4,"total_tokens":8}}' \
    "$(printf '%s\n' "$out" | grep '^data: ' | tail -2 | head -1 | sed 's/^data: //' | jq -c '{choices, usage}')"
expect_eq "... only when asked" 0 "$(chat '{"stream":true,"messages":[{"role":"user","content":"x"}]}' | grep -c usage)"
st=$(curl -s -o "$T/nso" -w '%{http_code}' "$U" -H "$J" -d '{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"@@nostreamoptions x"}]}')
expect_eq "@@nostreamoptions: a request with stream_options is a 400" 400 "$st"
expect_eq "... with an OpenAI error naming it" \
    '{"message":"Unrecognized request argument supplied: stream_options (stand-in @@nostreamoptions).","type":"invalid_request_error","param":"stream_options","code":null}' \
    "$(jq -c .error "$T/nso")"
expect_match "... one without it is answered" '"content":"Echo: "' \
    "$(chat '{"stream":true,"messages":[{"role":"user","content":"@@nostreamoptions x"}]}' | head -c 2000)"

out=$(chat '{"model":"m","messages":[{"role":"user","content":"not streamed"}]}')
expect_match "without stream: one JSON completion" '"object":"chat.completion".*"content":"Echo: not streamed"' "$out"

png=$(base64 -w0 "$ROOT/tests/fixtures/pixel.png")
size=$(stat -c %s "$ROOT/tests/fixtures/pixel.png")
out=$(chat "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,$png\"}}]}]}")
expect_match "image parts are described by type and size" "I see a PNG image of $size bytes. You asked: what\\?" "$out"

expect_match "invalid JSON is a 400 with an OpenAI error" '"error":\{"message":' "$(chat '{nope')"
check "invalid JSON status is 400" sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $U -H '$J' -d '{nope') = 400 ]"
check "missing messages is a 400" sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $U -H '$J' -d '{}') = 400 ]"
check "unknown path is a 404" sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$STANDIN_PORT/v2/x) = 404 ]"
check "429 comes with Retry-After" sh -c "curl -s -D - -o /dev/null $U -H '$J' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"@@fail=429\"}]}' | grep -qi '^retry-after: 1'"
codes=""
for i in 1 2 3; do
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' "$U" -H "$J" -d '{"messages":[{"role":"user","content":"x @@fail=503*2"}]}')"
done
expect_eq "fail=CODE*N fails N times, then answers" " 503 503 200" "$codes"
out=$(chat '{"stream":true,"messages":[{"role":"user","content":"a b c d @@cut=2"}]}')
expect_eq "cut sends the tokens before it" 2 "$(printf '%s\n' "$out" | grep -c '"delta":{"content"')"
check "cut stops without [DONE]" sh -c "! printf '%s' '$out' | grep -q DONE"
expect_eq "tokens=N answers N tokens" 1000 "$(chat '{"stream":true,"messages":[{"role":"user","content":"@@tokens=1000"}]}' | grep -c '"content":"tok')"
check "stand-in survives garbage" sh -c "printf 'GARBAGE\r\n\r\n' | timeout 2 bash -c 'cat > /dev/tcp/127.0.0.1/$STANDIN_PORT'; curl -sf http://127.0.0.1:$STANDIN_PORT/v1/models > /dev/null"
out=$(chat '{"stream":true,"messages":[{"role":"user","content":"a b @@plain"}]}')
expect_match "@@plain: one JSON completion though a stream was asked" '^\{"id":"chatcmpl-.*"object":"chat.completion".*"content":"Echo: a b"' "$out"
n=$(chat '{"stream":true,"messages":[{"role":"user","content":"@@endless @@delay=0"}]}' | head -c 3000000 | grep -c '"content":"tok')
check "@@endless: tokens keep coming ($n in the first 3 MB)" [ "$n" -ge 10000 ]
check "the stand-in still answers after a client left an endless answer" curl -sf "http://127.0.0.1:$STANDIN_PORT/v1/models"
listeners=$(ss -ltnH "sport = :$STANDIN_PORT" | awk '{print $4}' | tr '\n' ' ')
expect_eq "listens on the configured address only" "127.0.0.1:$STANDIN_PORT " "$listeners"
S='{"stream":true,"messages":[{"role":"user","content":"a b"}]}'
expect_eq "a stream keeps the connection for the next request" "1 0 0 " \
    "$(curl -s -o /dev/null -w '%{num_connects} ' "$U" -H "$J" -d "$S" --next -s -o /dev/null -w '%{num_connects} ' "$U" -H "$J" -d "$S" --next -s -o /dev/null -w '%{num_connects} ' "$U" -H "$J" -d '{"messages":[{"role":"user","content":"x"}]}')"

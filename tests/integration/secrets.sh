# redis_url's passwords (the Redis one and ?sentinel_password=) appear in no
# log, error message or HTTP answer: every program shows the URL masked
# (redis_url_redacted, common/redis_conn.h). The Sentinels named do not
# exist, so every program keeps failing to find the master and says so.
. "$(dirname "$0")/../lib.sh"

RPW=redis-pw-$$
SPW=sentinel-pw-$$
dead=$(free_port)   # nothing listens: each lookup is refused at once
export REDIS_URL="sentinel://:$RPW@127.0.0.1:$dead/aimsg/0?sentinel_password=$SPW"
masked="sentinel://***@127.0.0.1:$dead/aimsg/0?sentinel_password=***"
no_secret() { ! grep -rqF -e "$RPW" -e "$SPW" "$@"; }

out=$("$BIN/worker" --print-config)
expect_eq "--print-config shows redis_url masked" "redis_url='$masked'" \
    "$(printf '%s\n' "$out" | grep ^redis_url=)"
out=$("$BIN/worker" --redis-url "sentinel://:$RPW@s1/m m?sentinel_password=$SPW" 2>&1)
expect_match "a bad redis_url is named, masked" \
    "redis_url 'sentinel://\*\*\*@s1/m m\?sentinel_password=\*\*\*': bad master name" "$out"
out=$("$BIN/worker" --redis-url "redis://:$RPW@h:0" 2>&1)
expect_match "a bad redis:// is named, masked" "redis_url 'redis://\*\*\*@h:0': bad port" "$out"

spawn ws1 "$BIN/ws-push" --ws-port "$(free_port)" --instance-id ws1
spawn w1 "$BIN/worker"
check "ws-push logs redis_url masked" wait_until 10 grep -qF "(redis $masked)" "$T/ws1.out"
check "ws-push tries the Sentinels" wait_until 10 grep -q "no Sentinel named" "$T/ws1.out"
check "the worker tries the Sentinels" wait_until 10 grep -q "no Sentinel named" "$T/w1.out"

# lighttpd and fcgi-api (start_lighttpd wants a healthy API)
export PORT=$(free_port)
mkdir -p "$T/run"
ROOT=$ROOT RUN=$T/run BIN=$BIN WS_PORT=$(free_port) FCGI_PROCS=1 \
    sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/lighttpd/lighttpd.conf.in" "$T/run/lighttpd.conf"
lighttpd -f "$T/run/lighttpd.conf" || fail "lighttpd starts" "$(cat "$T/run/lighttpd-error.log")"
API="http://127.0.0.1:$PORT"
check "fcgi-api logs redis_url masked" wait_until 10 grep -qF "started (redis $masked," "$LOG_DIR"/*.log
expect_eq "a post without Redis is 503 with a generic reason" \
    '503 {"code":503,"status":"error","message":"服务暂时不可用 (service unavailable, try again)"}' \
    "$(http POST /api/message -H 'Content-Type: application/json' -d '{"content":"x"}')"
check "... and the log says why" grep -q "503 POST /api/message: no Sentinel named" "$LOG_DIR"/*.log

stop ws1
stop w1
check "no password in any log" no_secret "$LOG_DIR" "$T"/*.out "$T/run"

# a model endpoint's user:password (a gateway that takes Basic
# authentication) is as secret as the API key: masked in the log and in
# --print-config
APW=model-pw-$$
AURL="http://alice:$APW@127.0.0.1:$(free_port)/v1"     # nothing listens
out=$("$BIN/worker" --ai-base-url "$AURL" --ai-fallback-base-url "$AURL/x" --print-config)
expect_match "--print-config shows ai_base_url without its user:password" \
    "^ai_base_url='http://\*\*\*@127\.0\.0\.1:[0-9]*/v1'$" "$(printf '%s\n' "$out" | grep ^ai_base_url=)"
expect_match "... ai_fallback_base_url too" \
    "^ai_fallback_base_url='http://\*\*\*@127\.0\.0\.1:[0-9]*/v1/x'$" "$(printf '%s\n' "$out" | grep ^ai_fallback_base_url=)"
expect_match "... and the endpoint it derives" \
    "^ai_endpoint='http://\*\*\*@127\.0\.0\.1:[0-9]*/v1'$" "$(printf '%s\n' "$out" | grep ^ai_endpoint=)"
spawn w2 "$BIN/worker" --ai-base-url "$AURL"
check "the worker logs the endpoint with its user:password masked" \
    wait_until 10 grep -q "at http://\*\{$((${#APW} + 6))\}@127\.0\.0\.1:[0-9]*/v1, concurrency" "$T/w2.out"
stop w2
check "... and nowhere in clear" sh -c "! grep -rqF -e '$APW' '$LOG_DIR' $T/*.out"

# The test page www/test-websocket.html in a real headless Chromium, driven by
# tests/browser/page.test.mjs (playwright-core, the system's /usr/bin/chromium;
# no browser is ever downloaded): connect, text and image over the socket,
# HTTP posts answered by broadcast; conversations (the page keeps the id of
# the queued frame or the HTTP 200 body and names it in each message, so the
# stand-in's echo reports the earlier turns; New chat starts a new one) and
# the token usage shown on each answer; the connection count, and reconnecting by
# itself after ws-push is stopped and started again on the same port; Stop
# on a streaming answer; answers streaming while ws-push is killed (SIGKILL)
# and restarted are resumed by the page and shown whole, exactly once.
# Then with authentication on (AUTH_JWT_SECRET; ws-push and lighttpd with
# its fcgi-api are started again with it): pages opened with ?token= for
# alice (two tabs), bob, and a bad token, and one without; who sees which
# answer, the 401s, updating a token on a live socket, resuming after ws-push
# is killed, a quota's 429s (RATE_MESSAGES_PER_MINUTE).
# Leaves screenshots in tests/out/browser.png and browser-auth.png (or in
# $TEST_OUT).
. "$(dirname "$0")/../lib.sh"

DRIVER_DIR=$ROOT/tests/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SHOT=${TEST_OUT:-$ROOT/tests/out}/browser.png
SHOT_AUTH=${SHOT%.png}-auth.png
SECRET="browser test secret $$"

command -v node > /dev/null || { fail "node is installed"; exit 1; }
[ -x "$CHROMIUM" ] || { fail "chromium is installed" "no $CHROMIUM"; exit 1; }

# playwright-core, exactly as pinned in package-lock.json (node_modules is git-ignored)
want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$DRIVER_DIR/package.json")
have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$DRIVER_DIR/node_modules/playwright-core/package.json" 2>/dev/null | head -1)
if [ "$have" != "$want" ]; then
    (cd "$DRIVER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) > "$T/npm.out" 2>&1 ||
        { fail "playwright-core $want installs" "$(tail -c 600 "$T/npm.out" | tr '\n' ' ')"; exit 1; }
fi

# mint SUB [TTL [SECRET]]: a token for SUB (aimsg-token signs with
# auth_jwt_secret, here from the environment)
mint() {
    AUTH_JWT_SECRET=${3:-$AUTH_JWT_SECRET} "$BIN/aimsg-token" --sub "$1" --ttl "${2:-3600}" 2>> "$T/aimsg-token.err"
}

# the stack with authentication on: ws-push ws1 again on its port, lighttpd
# (and so fcgi-api) again on a new one; the driver gets the new address and
# the tokens in $T/browser-work/auth.json. The quota: 5 messages a minute
# per user (alice asks 4 times, carol goes over it).
auth_on() {
    export AUTH_JWT_SECRET="$SECRET" RATE_MESSAGES_PER_MINUTE=5
    kill "$(cat "$T/run/lighttpd.pid")" 2> /dev/null
    restart_wspush ws1 || return 1
    wait_until 10 fcgi_count_is 0 || { fail "lighttpd stops with its fcgi-api processes"; return 1; }
    start_lighttpd
    alice=$(mint alice) alice2=$(mint alice 7200) bob=$(mint bob) carol=$(mint carol) &&
        bad=$(mint alice 3600 "not the $SECRET") ||
        { fail "aimsg-token mints tokens" "$(tail -c 400 "$T/aimsg-token.err")"; return 1; }
    printf '{"api":"%s","alice":"%s","alice2":"%s","bob":"%s","carol":"%s","bad":"%s"}\n' "$API" \
        "$alice" "$alice2" "$bob" "$carol" "$bad" \
        > "$T/browser-work/auth.json.tmp" && mv "$T/browser-work/auth.json.tmp" "$T/browser-work/auth.json"
}

start_redis
start_standin
start_worker w1
start_wspush ws1
start_lighttpd

mkdir -p "$(dirname "$SHOT")" "$T/chrome-profile" "$T/browser-work"
rm -f "$SHOT" "$SHOT_AUTH"
spawn driver env API="$API" PROFILE_DIR="$T/chrome-profile" WORK_DIR="$T/browser-work" \
    SCREENSHOT="$SHOT" SCREENSHOT_AUTH="$SHOT_AUTH" CHROMIUM="$CHROMIUM" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 TOTAL_TIMEOUT_MS=210000 \
    timeout -k 5 240 node "$DRIVER_DIR/page.test.mjs"
driver=$(pid_of driver)

# the driver asks, by a "CTL ..." line, for ws-push to be stopped and started,
# or killed (SIGKILL: nothing is flushed, no close frame) and started at once;
# then for authentication to be turned on, and ws-push killed once more
stopped=0 started=0 killed=0 authon=0 killed_auth=0
while kill -0 "$driver" 2> /dev/null; do
    if [ $authon = 0 ] && grep -q '^CTL auth-on' "$T/driver.out"; then
        auth_on || echo "failed" > "$T/browser-work/auth.json"
        authon=1
    fi
    if [ $killed_auth = 0 ] && grep -q '^CTL kill-wspush-auth' "$T/driver.out"; then
        stop ws1 KILL
        restart_wspush ws1
        killed_auth=1
        echo "killed and restarted" > "$T/browser-work/killed-auth"
    fi
    if [ $killed = 0 ] && grep -q '^CTL kill-wspush$' "$T/driver.out"; then
        stop ws1 KILL
        restart_wspush ws1
        killed=1
        echo "killed and restarted" > "$T/browser-work/killed"   # the driver waits for it
    fi
    if [ $stopped = 0 ] && grep -q '^CTL stop-wspush' "$T/driver.out"; then
        stop ws1
        stopped=1
    fi
    if [ $started = 0 ] && grep -q '^CTL start-wspush' "$T/driver.out"; then
        restart_wspush ws1
        started=1
    fi
    sleep 0.1
done
wait "$driver"
rc=$?

# the driver's PASS/FAIL lines become this test's results
while IFS= read -r line; do
    case $line in
        "PASS "*) pass "${line#PASS }" ;;
        "FAIL "*) what=${line#FAIL }; fail "${what%% -- *}" "$(printf '%s' "$what" | sed -n 's/^.* -- //p')" ;;
        "NOTE "*) echo "  note: ${line#NOTE }" ;;
    esac
done < "$T/driver.out"

check "browser driver ran to its end" grep -q '^END$' "$T/driver.out"
expect_eq "browser driver exits 0" 0 "$rc"
expect_eq "ws-push was stopped and started on request" "1 1" "$stopped $started"
expect_eq "ws-push was killed and restarted on request" 1 "$killed"
expect_eq "authentication was turned on, ws-push killed with it on request" "1 1" "$authon $killed_auth"
check "screenshot is written" test -s "$SHOT"
check "screenshot with authentication is written" test -s "$SHOT_AUTH"
if [ "$rc" -ne 0 ]; then
    echo "--- driver output"; grep -v '^\(PASS\|FAIL\) ' "$T/driver.out" | tail -40
fi

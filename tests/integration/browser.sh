# The test page www/test-websocket.html in a real headless Chromium, driven by
# tests/browser/page.test.mjs (playwright-core, the system's /usr/bin/chromium;
# no browser is ever downloaded): connect, text and image over the socket,
# HTTP posts answered by broadcast, the connection count, and reconnecting by
# itself after ws-push is stopped and started again on the same port; Stop
# on a streaming answer; answers streaming while ws-push is killed (SIGKILL)
# and restarted are resumed by the page and shown whole, exactly once.
# Leaves a screenshot in tests/out/browser.png (or $TEST_OUT/browser.png).
. "$(dirname "$0")/../lib.sh"

DRIVER_DIR=$ROOT/tests/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SHOT=${TEST_OUT:-$ROOT/tests/out}/browser.png

command -v node > /dev/null || { fail "node is installed"; exit 1; }
[ -x "$CHROMIUM" ] || { fail "chromium is installed" "no $CHROMIUM"; exit 1; }

# playwright-core, exactly as pinned in package-lock.json (node_modules is git-ignored)
want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$DRIVER_DIR/package.json")
have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$DRIVER_DIR/node_modules/playwright-core/package.json" 2>/dev/null | head -1)
if [ "$have" != "$want" ]; then
    (cd "$DRIVER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) > "$T/npm.out" 2>&1 ||
        { fail "playwright-core $want installs" "$(tail -c 600 "$T/npm.out" | tr '\n' ' ')"; exit 1; }
fi

start_redis
start_standin
start_worker w1
start_wspush ws1
start_lighttpd

mkdir -p "$(dirname "$SHOT")" "$T/chrome-profile" "$T/browser-work"
rm -f "$SHOT"
spawn driver env API="$API" PROFILE_DIR="$T/chrome-profile" WORK_DIR="$T/browser-work" \
    SCREENSHOT="$SHOT" CHROMIUM="$CHROMIUM" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 TOTAL_TIMEOUT_MS=210000 \
    timeout -k 5 240 node "$DRIVER_DIR/page.test.mjs"
driver=$(pid_of driver)

# the driver asks, by a "CTL ..." line, for ws-push to be stopped and started,
# or killed (SIGKILL: nothing is flushed, no close frame) and started at once
stopped=0 started=0 killed=0
while kill -0 "$driver" 2> /dev/null; do
    if [ $killed = 0 ] && grep -q '^CTL kill-wspush' "$T/driver.out"; then
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
check "screenshot is written" test -s "$SHOT"
if [ "$rc" -ne 0 ]; then
    echo "--- driver output"; grep -v '^\(PASS\|FAIL\) ' "$T/driver.out" | tail -40
fi

# Every program: --help lists every option, bad configuration stops it with a
# message naming the file, line and key, and the API key never reaches a log.
. "$(dirname "$0")/../lib.sh"

keys=$(grep -o '^ *\(INT\|STR\)_OPT([a-z_]*' "$ROOT/common/config.c" | sed 's/.*(//')
str_keys=$(grep -o '^ *STR_OPT([a-z_]*' "$ROOT/common/config.c" | sed 's/.*(//')
# a renamed macro would leave these empty and the loops below checking nothing
check "the option table is found in config.c (at least 30 options)" [ "$(echo $keys | wc -w)" -ge 30 ]
check "... and its string options (at least 12)" [ "$(echo $str_keys | wc -w)" -ge 12 ]
long=$(head -c 70000 /dev/zero | tr '\0' k)
prefix=$(head -c 63 /dev/zero | tr '\0' p)
for prog in fcgi-api worker ws-push ai-standin; do
    "$BIN/$prog" --help > "$T/help" 2>&1
    expect_eq "$prog --help exits 0" 0 $?
    missing=""
    for k in $keys; do
        flag="--$(echo "$k" | tr _ -)"
        env=$(echo "$k" | tr a-z A-Z)
        grep -q -- "$flag " "$T/help" && grep -q "env $env," "$T/help" || missing="$missing $k"
    done
    expect_eq "$prog --help lists every option with flag and variable" "" "$missing"

    printf 'port: 8080\nai_modle: x\n' > "$T/bad.yaml"
    out=$("$BIN/$prog" --config "$T/bad.yaml" 2>&1); rc=$?
    expect_eq "$prog: unknown key exits 2" 2 "$rc"
    expect_eq "$prog: unknown key is named with file and line" "$T/bad.yaml:2: unknown key 'ai_modle'" "$out"

    # every string option is bounded: too long is an error naming where it came from
    printf 'redis_prefix: %s\n' "$prefix" > "$T/long.yaml"
    out=$("$BIN/$prog" --config "$T/long.yaml" 2>&1); rc=$?
    expect_eq "$prog: too long redis_prefix in a file exits 2" 2 "$rc"
    expect_eq "$prog: ... naming file, line and key" \
        "$T/long.yaml:1: key 'redis_prefix': too long: 63 bytes, at most 62" "$out"
    out=$(REDIS_PREFIX=$prefix "$BIN/$prog" 2>&1); rc=$?
    expect_eq "$prog: too long REDIS_PREFIX exits 2 naming the variable" \
        "2 environment REDIS_PREFIX: too long: 63 bytes, at most 62" "$rc $out"
    out=$("$BIN/$prog" --redis-prefix "$prefix" 2>&1); rc=$?
    expect_eq "$prog: too long --redis-prefix exits 2 naming the flag" \
        "2 --redis-prefix: too long: 63 bytes, at most 62" "$rc $out"
    unbounded=""
    for k in $str_keys; do
        flag="--$(echo "$k" | tr _ -)"
        out=$("$BIN/$prog" "$flag" "$long" 2>&1); rc=$?
        [ "$rc $out" = "2 $flag: too long: 70000 bytes, at most $(printf '%s' "$out" | sed 's/.*at most //')" ] || unbounded="$unbounded $k"
    done
    expect_eq "$prog: every string option refuses 70000 bytes" "" "$unbounded"
done
out=$("$BIN/worker" --print-config --redis-prefix "$(head -c 62 /dev/zero | tr '\0' p)" 2>&1)
expect_match "a redis_prefix of exactly the bound is accepted" "^redis_prefix='p{62}'" "$(printf '%s\n' "$out" | grep ^redis_prefix=)"
out=$("$BIN/worker" --ai-api-key "$long" 2>&1)
expect_match "a too long key is refused" "^--ai-api-key: too long" "$out"
check "... without showing it" sh -c "! printf '%s' '$out' | grep -q kkkk"

printf 'ws_port: lots\n' > "$T/bad.yaml"
expect_eq "wrong type names file, line, key and value" \
    "$T/bad.yaml:1: key 'ws_port': expected an integer, got 'lots'" "$("$BIN/ws-push" --config "$T/bad.yaml" 2>&1)"
expect_eq "unreadable file is named" \
    "$T/none.yaml: cannot read config file: No such file or directory" "$("$BIN/worker" --config "$T/none.yaml" 2>&1)"
expect_eq "bad flag value is named" "--ws-port: expected an integer, got 'x'" "$("$BIN/ws-push" --ws-port x 2>&1)"
expect_eq "bad environment is named" "environment WORKER_CONCURRENCY: 0 is out of range 1..100000" \
    "$(WORKER_CONCURRENCY=0 "$BIN/worker" 2>&1)"
expect_match "bad redis_url is named" "redis_url 'http://x'" "$("$BIN/worker" --redis-url http://x 2>&1)"

printf 'port: 7000\nai_model: from-file\nai_base_url: http://file/v1\n' > "$T/prec.yaml"
out=$(PORT=7100 AI_BASE_URL=http://env/v1 "$BIN/worker" --config "$T/prec.yaml" --ai-base-url http://flag/v1 --print-config)
expect_match "file value is used" "ai_model='from-file'" "$out"
expect_match "environment beats file" "^port=7100$" "$(printf '%s\n' "$out" | grep ^port=)"
expect_match "flag beats environment" "ai_base_url='http://flag/v1'" "$out"
out=$(AI_API_KEY=sk-very-secret "$BIN/worker" --print-config)
expect_match "print-config does not show the key" "ai_api_key='\(set\)'" "$out"

# The key from a file, since a flag is visible in ps (and --help says so).
"$BIN/worker" --help > "$T/help"
check "--help says the key flag is visible in ps" grep -q "visible in ps: use AI_API_KEY or ai_api_key_file" "$T/help"
printf 'sk-from-file\n' > "$T/key"
out=$("$BIN/worker" --ai-api-key-file "$T/key" --print-config)
expect_match "ai_api_key_file sets the key" "ai_api_key='\(set\)'" "$out"
out=$(AI_API_KEY=sk-other "$BIN/worker" --ai-api-key-file "$T/key" 2>&1); rc=$?
expect_eq "a key both set and in a file is an error" "2 ai_api_key_file: ai_api_key is set as well; set only one of them" "$rc $out"
out=$("$BIN/worker" --ai-api-key-file "$T/nokey" 2>&1); rc=$?
expect_eq "a missing key file is named" "2 ai_api_key_file '$T/nokey': cannot read: No such file or directory" "$rc $out"
: > "$T/empty"
out=$("$BIN/worker" --ai-api-key-file "$T/empty" 2>&1); rc=$?
expect_eq "an empty key file is an error" "2 ai_api_key_file '$T/empty': holds no key" "$rc $out"

# The key never appears in a log line, even when the model rejects it.
start_redis
export STANDIN_REQUIRE_KEY=sk-right-one
start_standin
start_wspush ws1
export AI_API_KEY=sk-wrong-secret-key AI_BASE_URL="http://127.0.0.1:$STANDIN_PORT/v1"
start_worker w1
out=$(wsclient --url "ws://127.0.0.1:$WS_PORT_ws1/ws" --send '{"type":"text","content":"sk-wrong-secret-key"}' --wait 1 --timeout 20)
expect_match "a rejected key gives a configuration error" 'rejected our credentials' "$out"
check "the rejection is logged" grep -q 'rejected us' "$T/w1.out"
check "the key appears in no log file" sh -c "! grep -rq 'sk-wrong-secret-key' $LOG_DIR $T/w1.out"
check "the key is masked where it would appear" grep -q '\*\*\*\*\*\*\*\*\*\*' "$LOG_DIR"/*.log
stop w1

# The right key from a file: the model accepts it, and ps does not show it.
unset AI_API_KEY
printf 'sk-right-one\n' > "$T/rightkey"
start_worker w2 --ai-api-key-file "$T/rightkey"
out=$(wsclient --url "ws://127.0.0.1:$WS_PORT_ws1/ws" --send '{"type":"text","content":"keyed"}' --wait 1 --timeout 20)
expect_match "a key read from ai_api_key_file is accepted by the model" '"content":"keyed"' "$out"
cmdline=$(tr '\0' ' ' < "/proc/$(pid_of w2)/cmdline")
expect_match "the worker's command line names the key file" "--ai-api-key-file $T/rightkey" "$cmdline"
check "... and not the key" sh -c "! printf '%s' '$cmdline' | grep -q sk-right-one"
stop w2

# A new log file when the date changes (UTC). libfaketime cannot be
# preloaded under ASan, so this uses the release build of the stand-in.
RELEASE=$ROOT/build/release
if [ -x "$RELEASE/ai-standin" ]; then
    mkdir -p "$T/daylogs"
    # preloaded directly (not through the faketime wrapper) so the pid is the stand-in's
    spawn daylog env TZ=UTC LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
        FAKETIME="@2031-03-04 23:59:58 x20" \
        "$RELEASE/ai-standin" --standin-port "$(free_port)" --log-dir "$T/daylogs"
    wait_until 10 test -s "$T/daylogs/2031-03-04.log"
    sleep 1         # 20 s of faked time: past midnight
    stop daylog
    check "the first day's lines go to its file" grep -q "listening on" "$T/daylogs/2031-03-04.log"
    check "after midnight a new file is started" grep -q "stopped" "$T/daylogs/2031-03-05.log"
else
    fail "log rotation test needs build/release/ai-standin"
fi

# ws-push says why whenever it stops (issue 12)
long=$(head -c 80 /dev/zero | tr '\0' p)
out=$("$BIN/ws-push" --redis-prefix "$long" 2>&1); rc=$?
expect_eq "ws-push: a too-long redis_prefix is a configuration error" 2 "$rc"
expect_match "ws-push: and says so" "^--redis-prefix: too long: 80 bytes, at most [0-9]+" "$out"
out=$("$BIN/ws-push" --instance-id "$(head -c 200 /dev/zero | tr '\0' i)" 2>&1); rc=$?
expect_eq "ws-push: a too-long instance_id is a configuration error" 2 "$rc"
expect_match "ws-push: and says so" "^--instance-id: too long: 200 bytes, at most [0-9]+" "$out"
out=$("$BIN/ws-push" --bind no-such-host.invalid 2>&1); rc=$?
expect_eq "ws-push: a bind address that does not resolve exits 1" 1 "$rc"
expect_match "ws-push: and says so" "bind 'no-such-host.invalid': not an address of this host" "$out"
start_wspush wsstop
stop wsstop
check "ws-push: a signal's stop is logged with the signal" grep -q "stopping on SIGTERM" "$T/wsstop.out"

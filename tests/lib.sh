# lib.sh -- what every integration test uses: free ports, real servers started
# and stopped, and the check/result bookkeeping tests/run.sh sums up.
#
# A test script sources this file, calls start_* for the servers it needs and
# check/expect_* for its assertions. Everything started is stopped on exit.

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/build/asan}
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/aimsg-$TEST_NAME.XXXXXX")
RESULTS=${RESULTS:-$T/results}
PIDS=""

export LOG_DIR="$T/logs" LOG_LEVEL=${LOG_LEVEL:-info}
export REDIS_PREFIX="t$$:"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$T/sanitizer"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$T/sanitizer"
export CONFIG="$T/settings.yaml"
: > "$CONFIG"                       # tests configure through the environment
unset AI_API_KEY AI_BASE_URL PORT REDIS_URL

# ---- results ------------------------------------------------------------

pass() { echo "PASS $TEST_NAME: $1" | tee -a "$RESULTS"; }
fail() { echo "FAIL $TEST_NAME: $1${2:+ -- $2}" | tee -a "$RESULTS"; }

# check NAME COMMAND...  passes when the command succeeds
check() {
    # (its own variable: the command may call spawn, which sets name)
    check_name=$1; shift
    if "$@" > "$T/check.out" 2>&1; then pass "$check_name"; else fail "$check_name" "$(tail -c 400 "$T/check.out" | tr '\n' ' ')"; fi
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected [$(printf '%.300s' "$2")] got [$(printf '%.300s' "$3")]"; fi
}

# expect_match NAME REGEX TEXT
expect_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then pass "$1"; else fail "$1" "[$(printf '%.300s' "$3")] does not match /$2/"; fi
}

# ---- processes -----------------------------------------------------------

free_port() {
    while :; do
        # below the ephemeral range, where outgoing connections take ports
        p=$(( (RANDOM << 15 | RANDOM) % 22000 + 10000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# wait_until SECONDS COMMAND...
wait_until() {
    limit=$1; shift
    i=0
    while [ "$i" -lt $((limit * 20)) ]; do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

spawn() {   # spawn NAME COMMAND... : runs in the background, remembers the pid
    name=$1; shift
    "$@" >> "$T/$name.out" 2>&1 &
    PIDS="$PIDS $!"
    eval "PID_$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)=$!"
}

pid_of() { eval "echo \$PID_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)"; }

stop() {    # stop NAME [SIGNAL]
    p=$(pid_of "$1")
    [ -n "$p" ] || return 0
    kill "-${2:-TERM}" "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    eval "PID_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)="
}

cleanup() {
    pkill -CONT -f "fcgi-api --config $CONFIG" 2>/dev/null   # a test may have stopped them
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    spawner=""
    for p in lighttpd apache2; do
        [ -f "$T/run/$p.pid" ] && kill "$(cat "$T/run/$p.pid")" 2>/dev/null && spawner=$p
    done
    # fcgi-api ends on the SIGTERM of the web server that spawned it. One
    # more while it exits can hang LeakSanitizer's exit scan (it and its
    # tracer wait for each other: a stray at 100 % CPU was left so): ours
    # only to those still running (spawn-fcgi's), and after 10 s a SIGKILL
    { [ -n "$spawner" ] && wait_until 3 fcgi_gone; } || pkill -f "fcgi-api --config $CONFIG" 2>/dev/null
    wait_until 10 fcgi_gone || pkill -KILL -f "fcgi-api --config $CONFIG" 2>/dev/null
    wait 2>/dev/null
    reports=$(find "$T" -maxdepth 1 -name 'sanitizer*' -size +0)
    if [ -n "$reports" ]; then
        fail "no sanitizer reports" "$(cat $reports | head -c 3000)"
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# ---- the servers -----------------------------------------------------------

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# Redis listens on a free port and on the socket $T/redis/redis.sock; the
# programs use the port, or the socket when REDIS_VIA=unix.
redis_spawn() {
    spawn redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/redis" \
        --unixsocket "$T/redis/redis.sock" --unixsocketperm 700 \
        --save "" --appendonly yes --appendfsync "${REDIS_FSYNC:-always}"
}

start_redis() {
    REDIS_PORT=$(free_port)
    mkdir -p "$T/redis"
    redis_spawn
    if [ "${REDIS_VIA:-tcp}" = unix ]; then
        export REDIS_URL="unix:$T/redis/redis.sock"
    else
        export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    fi
    wait_until 10 rcli ping || { fail "redis starts"; exit 1; }
}

restart_redis() {
    stop redis
    redis_spawn
    wait_until 10 rcli ping
}

start_standin() {
    export STANDIN_PORT=$(free_port)
    spawn standin "$BIN/ai-standin" --standin-delay-ms "${STANDIN_DELAY_MS:-10}"
    wait_until 10 port_open "$STANDIN_PORT" || { fail "stand-in starts"; exit 1; }
}

# start_worker NAME [FLAGS...]
start_worker() {
    n=$1; shift
    spawn "$n" "$BIN/worker" "$@"
    wait_until 10 sh -c "redis-cli -p $REDIS_PORT XINFO GROUPS ${REDIS_PREFIX}jobs | grep -q workers"
}

# start_wspush NAME [FLAGS...]; sets WS_PORT_<NAME>
start_wspush() {
    n=$1; shift
    port=$(free_port)
    spawn "$n" "$BIN/ws-push" --ws-port "$port" --instance-id "$n" "$@"
    eval "WS_PORT_$n=$port"
    wait_until 10 port_open "$port" || { fail "ws-push $n starts"; exit 1; }
    wait_until 10 sh -c "redis-cli -p $REDIS_PORT EXISTS ${REDIS_PREFIX}wspush:$n | grep -q 1"
}

# start_wspush_on NAME PORT [FLAGS...]: ws-push NAME on PORT, which others
# may share (--ws-processes N); sets WS_PORT_<NAME>. The port may already be
# open (a sibling): up when its presence key is there.
start_wspush_on() {
    n=$1 port=$2; shift 2
    spawn "$n" "$BIN/ws-push" --ws-port "$port" --instance-id "$n" "$@"
    eval "WS_PORT_$n=$port"
    wait_until 10 sh -c "redis-cli -p $REDIS_PORT EXISTS ${REDIS_PREFIX}wspush:$n | grep -q 1" ||
        { fail "ws-push $n starts on port $port" "$(tail -3 "$T/$n.out")"; exit 1; }
}

# restart_wspush NAME [FLAGS...]: stops ws-push NAME if it runs and starts it
# again on the same port (WS_PORT_<NAME>), so proxies and clients find it
restart_wspush() {
    n=$1; shift
    stop "$n"
    port=$(eval "echo \$WS_PORT_$n")
    spawn "$n" "$BIN/ws-push" --ws-port "$port" --instance-id "$n" "$@"
    wait_until 10 port_open "$port" || { fail "ws-push $n restarts on port $port"; return 1; }
    wait_until 10 sh -c "redis-cli -p $REDIS_PORT EXISTS ${REDIS_PREFIX}wspush:$n | grep -q 1"
}

# fcgi_pids: the fcgi-api processes of this test (any web server's)
fcgi_pids() { pgrep -f "fcgi-api --config $CONFIG"; }
fcgi_gone() { ! fcgi_pids > /dev/null; }
fcgi_count_is() { [ "$(fcgi_pids | wc -l)" = "$1" ]; }

# start_spawn_fcgi: two fcgi-api processes on FCGI_PORT, started by
# spawn-fcgi, for the web servers that do not spawn them (Apache, nginx)
start_spawn_fcgi() {
    FCGI_PORT=$(free_port)
    spawn-fcgi -a 127.0.0.1 -p "$FCGI_PORT" -F 2 -- "$BIN/fcgi-api" --config "$CONFIG" > "$T/spawn-fcgi.out" 2>&1
    check "spawn-fcgi starts two fcgi-api processes" wait_until 10 fcgi_count_is 2
}

# nginx_conf DIR: deploy/nginx/aimsg.conf.in rendered into DIR (PORT,
# FCGI_PORT and the ws-push port set) inside a minimal nginx.conf of our own:
# one worker, every path under DIR. nginx -p DIR -c DIR/nginx.conf runs it.
nginx_conf() {
    mkdir -p "$1"
    chmod 755 "$T" "$1"
    cp /etc/nginx/fastcgi_params /etc/nginx/mime.types "$1/"
    ROOT=$ROOT RUN=$1 BIN=$BIN WS_PORT=${WS_PORT:-$WS_PORT_ws1} FCGI_PORT=$FCGI_PORT \
        sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/nginx/aimsg.conf.in" "$1/aimsg.conf"
    cat > "$1/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 1024; }
http {
    include mime.types;
    access_log off;
    client_body_temp_path $1/body;
    fastcgi_temp_path $1/fastcgi;
    proxy_temp_path $1/proxy;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    include aimsg.conf;
}
CONF
}

start_lighttpd() {
    export PORT=$(free_port)
    mkdir -p "$T/run"
    ROOT=$ROOT RUN=$T/run BIN=$BIN WS_PORT=${WS_PORT:-$WS_PORT_ws1} FCGI_PROCS=${FCGI_PROCS:-2} \
        sh "$ROOT/scripts/render-config.sh" "$ROOT/deploy/lighttpd/lighttpd.conf.in" "$T/run/lighttpd.conf"
    lighttpd -f "$T/run/lighttpd.conf" || { fail "lighttpd starts" "$(cat "$T/run/lighttpd-error.log")"; exit 1; }
    wait_until 10 curl -fs "http://127.0.0.1:$PORT/api/health" || { fail "lighttpd serves the API" "$(tail -5 "$T/run/lighttpd-error.log")"; exit 1; }
    API="http://127.0.0.1:$PORT"
}

# stop_lighttpd: stops it and its fcgi-api processes (start_lighttpd starts
# it again with the environment of that moment)
stop_lighttpd() {
    [ -f "$T/run/lighttpd.pid" ] && kill "$(cat "$T/run/lighttpd.pid")" 2>/dev/null
    wait_until 10 fcgi_gone
    rm -f "$T/run/lighttpd.pid"
}

# wsclient ARGS... : the test client, against ws-push ws1 unless --url is given
wsclient() { "$BIN/wsclient" "$@"; }

# listen NAME URL [ARGS]: a background client whose output is $T/NAME.out;
# returns when it is connected
listen() {
    n=$1; url=$2; shift 2
    spawn "$n" "$BIN/wsclient" --url "$url" "$@"
    wait_until 10 grep -q "^# connected" "$T/$n.out"
}

# http METHOD PATH [curl args...]: prints "STATUS BODY"
http() {
    m=$1; path=$2; shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$API$path" "$@" > "$T/status"
    printf '%s %s' "$(cat "$T/status")" "$(cat "$T/body")"
}

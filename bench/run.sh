#!/bin/sh
# bench/run.sh -- the benchmark behind `make bench` (see README, "Benchmark").
#
# Starts the real stack on loopback (Redis, lighttpd + fcgi-api, worker,
# ws-push, the AI stand-in with no token delay) with the helpers of
# tests/lib.sh, runs each scenario for a bounded time, stops everything,
# prints one table (Markdown) and writes it as JSON to
# bench/results/<date>-<host>.json.
#
#   BIN=build/bench sh bench/run.sh       after `make BUILD=build/bench ... all`
#   BENCH_QUICK=1 sh bench/run.sh         one run of everything, smaller: to try it out
#   BENCH_ONLY="http redis" sh bench/run.sh  only these scenarios (no results file)
#
# Exit status: 0 when it ran (whatever the figures), else non-zero: a
# program or tool is missing or the stack did not start.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$BENCH_ROOT/build/bench}
case $BIN in /*) ;; *) BIN=$BENCH_ROOT/$BIN ;; esac
export BIN
BUILD_FLAGS=${BUILD_FLAGS:--O2 -DNDEBUG}
QUICK=${BENCH_QUICK:-0}
OUT_DIR=${BENCH_OUT:-$BENCH_ROOT/bench/results}

die() { echo "bench: $*" >&2; exit 2; }

for p in fcgi-api worker ws-push ai-standin wsload; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing: run 'make bench' (or build into $BIN first)"
done
for t in redis-server redis-cli redis-benchmark lighttpd wrk curl; do
    command -v "$t" > /dev/null 2>&1 || die "$t is not installed (make deps installs it)"
done

# tests/lib.sh: free ports, spawn/stop, start_wspush, start_worker, start_lighttpd.
# It derives ROOT from $0 as a test script would; ours is one level up.
# Redis as `make run` starts it (append-only file, fsync every second, not
# the fsync-always of the tests); the stand-in without token delay.
export REDIS_FSYNC=everysec STANDIN_DELAY_MS=0
. "$BENCH_ROOT/tests/lib.sh"
ROOT=$BENCH_ROOT
export LOG_LEVEL=${LOG_LEVEL:-info}

# Our own cleanup: every process by its pid (lighttpd's FastCGI children too).
bench_cleanup() {
    trap - EXIT INT TERM
    [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2> /dev/null
    for p in $PIDS; do kill "$p" 2> /dev/null; done
    if [ -f "$T/run/lighttpd.pid" ]; then
        lp=$(cat "$T/run/lighttpd.pid")
        kids=$(pgrep -P "$lp" 2> /dev/null)
        kill "$lp" 2> /dev/null
        sleep 0.3
        [ -n "$kids" ] && kill $kids 2> /dev/null
    fi
    [ -n "${NGINX_CONFIG:-}" ] && pkill -f "fcgi-api --config $NGINX_CONFIG"
    wait 2> /dev/null
    [ -n "${KEEP:-}" ] && echo "bench: kept $T" >&2 || rm -rf "$T"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- small tools -----------------------------------------------------------

# jget KEY JSON: a number or string field of a flat JSON object
jget() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,}\"]*\).*/\1/p"; }
# median V...: the median of the non-empty values, "-" if none
median() {
    printf '%s\n' "$@" | grep -E '^-?[0-9.]+$' | sort -g |
        awk '{a[NR] = $1} END {if (!NR) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
# calc EXPR: awk arithmetic, printed with %.Nf when a format is given
calc() { awk "BEGIN {printf \"${2:-%.0f}\", $1}"; }
# fmt_int N: 1234567 -> 1,234,567
fmt_int() {
    case $1 in -|'') echo "-"; return ;; esac
    printf '%.0f' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'
}
# ms US: microseconds as milliseconds, 2 decimals
ms() { case $1 in -|''|-1) echo "-" ;; *) calc "$1 / 1000" "%.2f" ;; esac; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2> /dev/null; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat" 2> /dev/null; }
now_s() { date +%s.%N; }
cpu_sum() { local x t=0; for x in "$@"; do t=$(calc "$t + $(cpu_s "$x" || echo 0)" "%.2f"); done; echo "$t"; }
js() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
# jn V: V as a JSON number, or null
jn() { printf '%s' "$1" | grep -Eq '^-?[0-9]+(\.[0-9]+)?$' && printf '%s' "$1" || printf 'null'; }
# sum V...: the sum of the numeric values
sum() { printf '%s\n' "$@" | awk '/^[0-9.]+$/ {s += $1} END {printf "%.0f", s}'; }
say() { printf '%s\n' "$*"; }

ROWS=$T/table.tsv
JROWS=$T/rows.json
: > "$ROWS"
: > "$JROWS"
# row SCENARIO PARAMETERS RESULT RUNS METRICS-JSON-MEMBERS
row() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$ROWS"
    printf '{"scenario":%s,"parameters":%s,"result":%s,"runs":%s,"metrics":{%s}}\n' \
        "$(js "$1")" "$(js "$2")" "$(js "$3")" "$(js "$4")" "$5" >> "$JROWS"
    say "   -> $3"
}
# runs_label N
runs_label() { [ "$1" -eq 1 ] && echo "1 run" || echo "median of $1"; }

if [ "$QUICK" = 1 ]; then RUNS=1; else RUNS=3; fi

# ulimit -n up to the hard limit: every connection is a descriptor on both ends
ulimit -n "$(ulimit -Hn)" 2> /dev/null
FD_LIMIT=$(ulimit -n)
case $FD_LIMIT in *[!0-9]*|'') FD_LIMIT=1048576 ;; esac

# ---- the stack -----------------------------------------------------------------

START=$(date +%s)
say "== starting the stack on loopback (binaries $BIN, built with $BUILD_FLAGS)"
start_redis
start_standin
start_wspush ws1
export WS_PORT=$WS_PORT_ws1
start_lighttpd
WS1="ws://127.0.0.1:$WS_PORT_ws1/ws"
WSPUSH_PID=$(pid_of ws1)
FCGI_PROCS=${FCGI_PROCS:-2}
say "   redis :$REDIS_PORT, stand-in :$STANDIN_PORT (no token delay), ws-push :$WS_PORT_ws1, lighttpd :$PORT ($FCGI_PROCS fcgi-api), fd limit $FD_LIMIT"

# ---- (1) connections held by one ws-push ---------------------------------------

# a ws-push of its own, fresh for each step, so RSS starts from the same place
scenario_connections() {
    say "== (1) connections: idle WebSocket connections held by one ws-push"
    # (not n, p, i, port, name, limit: the lib's functions set those)
    local cap=$((FD_LIMIT - 100)) prev=0 steps want note line est failed closed rss0 rss1 per held
    if [ "$QUICK" = 1 ]; then steps="2000 5000"; else steps="10000 20000 50000"; fi
    MAX_HELD=0
    local over=""
    for want in $steps; do [ "$want" -gt "$cap" ] && over="$over${over:+, }$want"; done
    [ -n "$over" ] && SKIPPED="$over connections not tried: the descriptor limit is $FD_LIMIT per process (ulimit -Hn; ws-push and the client each need one per connection)"
    for want in $steps; do
        note=""
        if [ "$want" -gt "$cap" ]; then
            [ "$cap" -gt "$prev" ] || break
            want=$cap
            note=" (fd limit $FD_LIMIT)"
        fi
        say "   $want connections$note from 16 source addresses 127.0.0.1-16, straight to ws-push, held 3 s"
        start_wspush wsc
        local pid
        pid=$(pid_of wsc)
        sleep 0.5
        rss0=$(rss_kib "$pid")
        "$BIN/wsload" --url "ws://127.0.0.1:$WS_PORT_wsc/ws" --connections "$want" --sources 16 \
            --connect-window 256 --hold 3 --duration 60 > "$T/conn.json" 2> "$T/conn.err" &
        LOAD_PID=$!
        rss1=""
        held=""
        if wait_until 62 grep -q '^# established' "$T/conn.err"; then
            sleep 1.5
            rss1=$(rss_kib "$pid")
            held=$(rcli GET "${REDIS_PREFIX}wspush:wsc")
        fi
        wait "$LOAD_PID"
        LOAD_PID=
        line=$(tail -1 "$T/conn.json")
        stop wsc
        est=$(jget established "$line")
        failed=$(jget failed "$line")
        closed=$(jget closed_early "$line")
        if [ -z "$est" ] || [ -z "$rss1" ]; then
            row "(1) connections" "$want clients" "failed: $(tail -2 "$T/conn.err" | tr '\n' ' ')" "1 run" "\"connections\":$want"
            break
        fi
        per=$(calc "($rss1 - $rss0) / ($est > 0 ? $est : 1)" "%.2f")
        local cs rate
        cs=$(jget connect_s "$line")
        rate=$(calc "$est / ($cs > 0 ? $cs : 1)")
        row "(1) connections held$note" \
            "$want clients, 16 source addresses, idle, held 3 s" \
            "$(fmt_int "$est") established in $cs s ($(fmt_int "$rate")/s), $failed failed, $closed dropped; ws-push counted ${held:-?}; RSS $(calc "$rss0 / 1024" "%.1f") → $(calc "$rss1 / 1024" "%.1f") MiB = $per KiB per connection" \
            "1 run" \
            "\"connections\":$want,\"established\":$est,\"failed\":$failed,\"dropped\":$closed,\"counted_by_wspush\":$(jn "$held"),\"connect_s\":$(jn "$cs"),\"rss_before_kib\":$rss0,\"rss_held_kib\":$rss1,\"rss_per_conn_kib\":$per"
        [ "$failed" = 0 ] && [ "$closed" = 0 ] && [ "$est" -gt "$MAX_HELD" ] && MAX_HELD=$est
        prev=$want
        [ -n "$note" ] && break
    done
    [ -n "${SKIPPED:-}" ] && say "   $SKIPPED"
}

# ---- (2) fan-out: frames PUBLISHed on the broadcast channel ---------------------

FRAME_BYTES=100
# fanout CLIENTS FRAMES RATE RUNS  (RATE 0 = burst)
fanout() {
    local n=$1 frames=$2 rate=$3 runs=$4 r line fps=() p50=() p99=() wsc=() cli=() ok=() est=() drop=() expected what
    expected=$((n * (frames + 1)))
    LAST_P99=""
    if [ "$rate" = 0 ]; then what="burst: $frames frames published as fast as Redis takes them"
    else what="paced: $frames frames at $rate frames/s ($(fmt_int $((n * rate))) deliveries/s asked)"; fi
    say "   $n clients, $what, $FRAME_BYTES-byte frames, $(runs_label "$runs")"
    for r in $(seq 1 "$runs"); do
        line=$("$BIN/wsload" --url "${FANOUT_URL:-$WS1}" --connections "$n" --sources 16 --publish "$REDIS_URL" \
            --channel "${REDIS_PREFIX}out:all" --frames "$frames" --frame-bytes "$FRAME_BYTES" \
            --rate "$rate" --expect-done 1 --duration 90 --watch-pid "${FANOUT_PIDS:-$WSPUSH_PID}" \
            ${FANOUT_RAW:+--raw 1} 2>> "$T/fanout.err" | tail -1)
        [ -n "$line" ] || continue
        fps+=("$(jget frames_per_s "$line")")
        p50+=("$(jget lat_p50_us "$line")")
        p99+=("$(jget lat_p99_us "$line")")
        wsc+=("$(jget watch_cores "$line")")
        cli+=("$(jget self_cores "$line")")
        ok+=("$(jget frames "$line")")
        est+=("$(jget established "$line")")
        drop+=("$(jget closed_early "$line")")
        sleep 1 # ws-push lets the last ones go
    done
    if [ ${#fps[@]} -eq 0 ]; then
        row "(2) fan-out" "$n clients, $what" "failed: $(tail -2 "$T/fanout.err" | tr '\n' ' ')" "$(runs_label "$runs")" "\"clients\":$n"
        return
    fi
    local mf m50 m99 mw mc mo
    mf=$(median "${fps[@]}"); m50=$(median "${p50[@]}"); m99=$(median "${p99[@]}")
    mw=$(median "${wsc[@]}"); mc=$(median "${cli[@]}"); mo=$(median "${ok[@]}")
    LAST_P99=$m99
    local kind="burst"
    [ "$rate" = 0 ] || kind="paced at $rate frames/s"
    row "(2) fan-out, $n clients, $kind${FANOUT_LABEL:-}" \
        "$n clients straight to ws-push (16 source addresses${FANOUT_RAW:+, wsload --raw}), $what, $FRAME_BYTES-byte frames, PUBLISHed on P out:all with a fresh ts" \
        "$(fmt_int "$mf") frames/s delivered (sum over clients); latency p50 $(ms "$m50") ms, p99 $(ms "$m99") ms; $(fmt_int "$mo") of $(fmt_int $expected) frames delivered, $(sum "${drop[@]}") connections closed early; ws-push $mw cores, load client $mc cores" \
        "$(runs_label "$runs")" \
        "\"clients\":$n,\"frames_per_answer\":$frames,\"rate\":$rate,\"frame_bytes\":$FRAME_BYTES,\"frames_per_s\":$(jn "$mf"),\"latency_p50_us\":$(jn "$m50"),\"latency_p99_us\":$(jn "$m99"),\"delivered\":$(jn "$mo"),\"expected\":$expected,\"closed_as_slow\":$(sum "${drop[@]}"),\"wspush_cores\":$(jn "$mw"),\"client_cores\":$(jn "$mc")"
}

scenario_fanout() {
    say "== (2) fan-out: one answer of many chunks broadcast to every client (frames PUBLISHed straight on P out:all, each with a fresh ts; the load client shares the machine)"
    if [ "$QUICK" = 1 ]; then
        fanout 1000 200 0 1
        fanout 1000 200 100 1
        fanout 5000 100 0 1
    else
        fanout 1000 200 0 "$RUNS"
        fanout 1000 200 100 "$RUNS"
        fanout 10000 200 0 "$RUNS"
        fanout 10000 100 10 1
    fi
}

# The paced load of issue 18 (10k clients, 50 frames/s each: 500k
# deliveries/s, then 100/s: 1M/s) on one ws-push, then on two sharing the
# port (ws_processes 2), in one run; "ws-push" CPU is both processes'.
scenario_share() {
    say "== (2b) paced fan-out, one ws-push vs two sharing the port (ws_processes: 2)"
    local frames=100 p
    [ "$QUICK" = 1 ] && frames=50
    fanout 10000 "$frames" 50 1
    p=$(free_port)
    start_wspush_on sa "$p" --ws-processes 2
    start_wspush_on sb "$p" --ws-processes 2
    FANOUT_URL="ws://127.0.0.1:$p/ws" FANOUT_PIDS="$(pid_of sa),$(pid_of sb)" \
        FANOUT_LABEL=", 2 ws-push sharing the port"
    fanout 10000 "$frames" 50 1
    fanout 10000 "$frames" 100 1
    fanout 1000 "$frames" 500 1
    unset FANOUT_URL FANOUT_PIDS FANOUT_LABEL
    stop sa
    stop sb
    fanout 1000 "$frames" 500 1
}

# Issue 18 item 1: paced fan-out at 100k, 500k and 1M deliveries/s to 1k
# and 10k clients, then the highest rate each gets at p99 < 50 ms; the
# load client is wsload --raw (epoll, a parser of its own: a third less CPU than
# lws' client), one ws-push, then two sharing the port.
# highest CLIENTS SECS: paced fan-out (SECS seconds each) at 100k, 200k, ... 500k deliveries/s
# until p99 is 50 ms or more
highest() {
    local r secs=$2
    for r in 1 2 3 4 5; do
        fanout "$1" $((r * 100000 / $1 * secs)) $((r * 100000 / $1)) 1
        case $LAST_P99 in ''|-*|*[!0-9.]*) break ;; esac
        [ "${LAST_P99%.*}" -lt 50000 ] || break
    done
}

scenario_paced() {
    say "== (2c) paced fan-out: 1k and 10k clients at 100k, 500k, 1M deliveries/s (wsload --raw)"
    local cl r secs=4 p np line k
    [ "$QUICK" = 1 ] && secs=2
    # the floor: one small send() on loopback, which every delivery costs
    for cl in 1000 10000; do
        line=$("$BIN/sendcost" --sockets "$cl" --rounds 20 --bytes "$FRAME_BYTES" 2> "$T/sendcost.err") &&
            cl=$(jget sockets "$line") || { say "   sendcost failed: $(tail -1 "$T/sendcost.err")"; continue; }
        row "(2c) one loopback TCP send, $cl sockets" \
            "bench/sendcost: $FRAME_BYTES bytes on each of $cl loopback connections (Nagle off), 20 rounds, a reader process draining them on epoll" \
            "$(jget us_per_send "$line") µs per send() (wall time; includes the receiving side's TCP, run in the sender's softirq)" \
            "1 run" "\"sockets\":$cl,\"us_per_send\":$(jn "$(jget us_per_send "$line")")"
    done
    export FANOUT_RAW=1
    for cl in 1000 10000; do
        for r in 100000 500000 1000000; do
            fanout "$cl" $((r / cl * secs)) $((r / cl)) 1
        done
    done
    say "   the highest rate at p99 < 50 ms (100k deliveries/s more each step), one ws-push"
    highest 1000 "$secs"
    highest 10000 "$secs"
    p=$(free_port)
    np=2
    for k in $(seq 1 $np); do start_wspush_on "sp$k" "$p" --ws-processes $np; done
    FANOUT_URL="ws://127.0.0.1:$p/ws" FANOUT_PIDS="$(pid_of sp1),$(pid_of sp2)" \
        FANOUT_LABEL=", 2 ws-push sharing the port"
    say "   the same, 2 ws-push sharing the port"
    highest 1000 "$secs"
    highest 10000 "$secs"
    unset FANOUT_URL FANOUT_PIDS FANOUT_LABEL FANOUT_RAW
    for k in $(seq 1 $np); do stop "sp$k"; done
}

# ---- (4) HTTP through lighttpd ---------------------------------------------------

to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else print "-" }'
}
# wrk_runs LABEL PATH [wrk args]: through the web server WEB (lighttpd, on
# $API, with its fcgi-api children; or nginx, on $NGINX_API, with
# spawn-fcgi's fcgi-api); the median rate is left in LAST_RPS
WRK_THREADS=2 WRK_CONNS=32 WEB=lighttpd
wrk_runs() {
    local label=$1 path=$2 r rps=() p99=() p50=() bad=() errs=() d=10 base=$API
    shift 2
    [ "$QUICK" = 1 ] && d=5
    local lp kids l0 l1 f0 f1 r0 r1 lc=() fc=() rc=() webs
    if [ "$WEB" = nginx ]; then
        base=$NGINX_API
        lp=$(cat "$T/nginx/nginx.pid")
        webs="$lp $(pgrep -P "$lp" | tr '\n' ' ')"
        kids=$(pgrep -f "fcgi-api --config $NGINX_CONFIG" | tr '\n' ' ')
    else
        lp=$(cat "$T/run/lighttpd.pid")
        webs=$lp
        kids=$(pgrep -P "$lp" | tr '\n' ' ')
    fi
    say "   $WEB, $label: wrk -t$WRK_THREADS -c$WRK_CONNS -d${d}s --latency $* $base$path, $(runs_label "$RUNS")"
    for r in $(seq 1 "$RUNS"); do
        # shellcheck disable=SC2086
        l0=$(cpu_sum $webs); f0=$(cpu_sum $kids); r0=$(cpu_s "$(pid_of redis)")
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${d}s" --latency "$@" "$base$path" > "$T/wrk.out" 2>&1
        # shellcheck disable=SC2086
        l1=$(cpu_sum $webs); f1=$(cpu_sum $kids); r1=$(cpu_s "$(pid_of redis)")
        lc+=("$(calc "($l1 - $l0) / $d" "%.2f")"); fc+=("$(calc "($f1 - $f0) / $d" "%.2f")"); rc+=("$(calc "($r1 - $r0) / $d" "%.2f")")
        rps+=("$(awk '/^Requests\/sec:/ {print $2}' "$T/wrk.out")")
        p50+=("$(to_ms "$(awk '$1 == "50%" {print $2}' "$T/wrk.out")")")
        p99+=("$(to_ms "$(awk '$1 == "99%" {print $2}' "$T/wrk.out")")")
        bad+=("$(awk '/Non-2xx/ {print $NF}' "$T/wrk.out")")
        errs+=("$(sed -n 's/.*Socket errors: //p' "$T/wrk.out")")
    done
    local mr m50 m99
    mr=$(median "${rps[@]}"); m50=$(median "${p50[@]}"); m99=$(median "${p99[@]}")
    LAST_RPS=$mr
    local nb se
    nb=$(sum "${bad[@]}")
    se=$(printf '%s\n' "${errs[@]}" | grep . | sort -u | tr '\n' ';' | sed 's/;$//')
    row "(4) HTTP $label, $WEB" \
        "wrk -t$WRK_THREADS -c$WRK_CONNS -d${d}s --latency, through $WEB ($FCGI_PROCS fcgi-api$([ "$WEB" = nginx ] && echo ", FastCGI connections kept"))" \
        "$(fmt_int "$mr") req/s; latency p50 $m50 ms, p99 $m99 ms; non-2xx answers: $nb${se:+; socket errors: $se}; CPU: $WEB $(median "${lc[@]}") cores, fcgi-api $(median "${fc[@]}") (all $(echo $kids | wc -w)), Redis $(median "${rc[@]}"), the rest is wrk" \
        "$(runs_label "$RUNS")" \
        "\"web_server\":\"$WEB\",\"requests_per_s\":$(jn "$mr"),\"latency_p50_ms\":$(jn "$m50"),\"latency_p99_ms\":$(jn "$m99"),\"non_2xx\":$nb,\"web_server_cores\":$(jn "$(median "${lc[@]}")"),\"fcgi_api_cores\":$(jn "$(median "${fc[@]}")"),\"redis_cores\":$(jn "$(median "${rc[@]}")"),\"threads\":$WRK_THREADS,\"connections\":$WRK_CONNS,\"duration_s\":$d"
}

# nginx (one worker, as lighttpd has one process) with deploy/nginx's site,
# in front of FCGI_PROCS fcgi-api started by spawn-fcgi; NGINX_API its URL
start_bench_nginx() {
    command -v nginx > /dev/null && command -v spawn-fcgi > /dev/null || return 1
    NGINX_CONFIG=$T/settings-nginx.yaml
    cp "$CONFIG" "$NGINX_CONFIG"
    FCGI_PORT=$(free_port)
    spawn-fcgi -a 127.0.0.1 -p "$FCGI_PORT" -F "$FCGI_PROCS" -- "$BIN/fcgi-api" --config "$NGINX_CONFIG" \
        > "$T/spawn-fcgi.out" 2>&1 || return 1
    local lighttpd_port=$PORT
    PORT=$(free_port)
    NGINX_API="http://127.0.0.1:$PORT"
    nginx_conf "$T/nginx"
    PORT=$lighttpd_port
    spawn nginx nginx -p "$T/nginx" -c "$T/nginx/nginx.conf"
    wait_until 10 curl -fs "$NGINX_API/api/health"
}

stop_bench_nginx() {
    stop nginx
    pkill -f "fcgi-api --config $NGINX_CONFIG"
}

# ratio_row: the API's rates against the static file's, on WEB
ratio_row() {
    case "$1 $2 $3" in *[!0-9.\ ]*) return ;; esac
    row "(4) HTTP, the API against a static file, $WEB" "the rates above, same session" \
        "GET /api/status $(calc "100 * $2 / $1" "%.0f") %, POST /api/message $(calc "100 * $3 / $1" "%.0f") % of the static file's $(fmt_int "$1") req/s" \
        "-" "\"web_server\":\"$WEB\",\"status_pct\":$(calc "100 * $2 / $1" "%.1f"),\"message_pct\":$(calc "100 * $3 / $1" "%.1f")"
}

scenario_http() {
    say "== (4) HTTP: a small static file, then the API, through lighttpd and through nginx; no worker running (the POSTed jobs pile up and are deleted afterwards)"
    local static status message
    for WEB in lighttpd nginx; do
        if [ "$WEB" = nginx ] && ! start_bench_nginx; then
            say "   nginx did not start: $(tail -2 "$T/spawn-fcgi.out" "$T/nginx/error.log" 2> /dev/null | tr '\n' ' ')"
            continue
        fi
        wrk_runs "GET /robots.txt (a static file of $(wc -c < "$ROOT/www/robots.txt") bytes)" /robots.txt
        static=$LAST_RPS
        wrk_runs "POST /api/message" /api/message -s "$BENCH_ROOT/bench/post.lua"
        message=$LAST_RPS
        say "   $(rcli XLEN "${REDIS_PREFIX}jobs") jobs queued by the POSTs: deleting the stream"
        rcli DEL "${REDIS_PREFIX}jobs" > /dev/null
        wrk_runs "GET /api/status" /api/status
        status=$LAST_RPS
        ratio_row "$static" "$status" "$message"
        [ "$WEB" = nginx ] && stop_bench_nginx
    done
    WEB=lighttpd
}

# ---- (3) end to end -----------------------------------------------------------------

scenario_e2e() {
    local n=200 r line e50=() e99=() h50=() p50=() ok=()
    [ "$QUICK" = 1 ] && n=50
    say "== (3) end to end: POST /api/message through lighttpd -> first chunk at a WebSocket client (connected through lighttpd's /ws proxy)"
    say "   $n sequential requests, each waits for its answer's done frame; content 'bench e2e @@tokens=8', stand-in without delay; $(runs_label "$RUNS")"
    for r in $(seq 1 "$RUNS"); do
        line=$("$BIN/wsload" --url "ws://127.0.0.1:$PORT/ws" --post "$API/api/message" --requests "$n" \
            --content "bench e2e @@tokens=8" --duration 120 2>> "$T/e2e.err" | tail -1)
        [ -n "$line" ] || continue
        e50+=("$(jget e2e_p50_us "$line")"); e99+=("$(jget e2e_p99_us "$line")")
        h50+=("$(jget http_p50_us "$line")"); p50+=("$(jget publish_p50_us "$line")")
        ok+=("$(jget e2e_samples "$line")")
    done
    if [ ${#e50[@]} -eq 0 ]; then
        row "(3) end to end" "$n sequential POSTs" "failed: $(tail -2 "$T/e2e.err" | tr '\n' ' ')" "$(runs_label "$RUNS")" "\"requests\":$n"
        return
    fi
    local m50 m99 mh mp
    m50=$(median "${e50[@]}"); m99=$(median "${e99[@]}"); mh=$(median "${h50[@]}"); mp=$(median "${p50[@]}")
    row "(3) end to end, POST → first chunk" \
        "$n sequential POST /api/message through lighttpd, client on lighttpd /ws, zero-delay model" \
        "p50 $(ms "$m50") ms, p99 $(ms "$m99") ms (HTTP answer p50 $(ms "$mh") ms; worker published the chunk at p50 $(ms "$mp") ms); answered: $(echo "${ok[*]}" | sed 's/ /, /g') of $n" \
        "$(runs_label "$RUNS")" \
        "\"requests\":$n,\"e2e_p50_us\":$(jn "$m50"),\"e2e_p99_us\":$(jn "$m99"),\"http_p50_us\":$(jn "$mh"),\"published_p50_us\":$(jn "$mp"),\"answered\":$(sum "${ok[@]}")"
}

# ---- (5) the worker ----------------------------------------------------------------

# worker_runs JOBS TOKENS DELAY_MS RUNS LABEL
# The answers go to a channel nobody listens to, so that ws-push and a client
# do not take CPU from the worker: chunks are counted by Redis (PUBLISH calls
# in INFO commandstats, minus one done frame per job), the end is when the
# worker has acknowledged and deleted every job (XLEN P jobs = 0, polled
# every 50 ms), concurrency is the largest XPENDING count seen.
worker_runs() {
    local jobs=$1 tokens=$2 delay=$3 runs=$4 label=$5 r wall chunks maxp pend left c0 c1 s0 s1 r0 r1 t0 t1
    local walls=() chs=() cps=() cores=() scores=() rcores=() conc=() dead=()
    local null_ch="${REDIS_PREFIX}out:bench-nobody"
    say "   $jobs jobs of 'bench @@tokens=$tokens @@delay=$delay' queued at once (XADD, reply on a channel without subscribers), worker --worker-concurrency $jobs; $(runs_label "$runs")"
    start_worker wb --worker-concurrency "$jobs"
    local wpid spid rpid
    wpid=$(pid_of wb); spid=$(pid_of standin); rpid=$(pid_of redis)
    for r in $(seq 1 "$runs"); do
        rcli CONFIG RESETSTAT > /dev/null
        c0=$(cpu_s "$wpid"); s0=$(cpu_s "$spid"); r0=$(cpu_s "$rpid"); t0=$(now_s)
        for _ in $(seq 1 "$jobs"); do
            printf 'XADD %sjobs * kind text content "bench @@tokens=%d @@delay=%d" reply %s ts 0\n' \
                "$REDIS_PREFIX" "$tokens" "$delay" "$null_ch"
        done | rcli > /dev/null
        maxp=0
        while :; do
            pend=$(rcli XPENDING "${REDIS_PREFIX}jobs" workers | head -1)
            [ "${pend:-0}" -gt "$maxp" ] && maxp=$pend
            left=$(rcli XLEN "${REDIS_PREFIX}jobs")
            [ "${left:-1}" = 0 ] && break
            [ "$(calc "($(now_s) - $t0 > 120)" "%d")" = 1 ] && break
            sleep 0.05
        done
        t1=$(now_s); c1=$(cpu_s "$wpid"); s1=$(cpu_s "$spid"); r1=$(cpu_s "$rpid")
        chunks=$(rcli INFO commandstats | sed -n 's/^cmdstat_publish:calls=\([0-9]*\).*/\1/p')
        chunks=$((${chunks:-0} - jobs)) # minus the done frames
        wall=$(calc "$t1 - $t0" "%.3f")
        walls+=("$wall"); chs+=("$chunks"); conc+=("$maxp")
        cps+=("$(calc "$chunks / $wall")")
        cores+=("$(calc "($c1 - $c0) / $wall" "%.2f")")
        scores+=("$(calc "($s1 - $s0) / $wall" "%.2f")")
        rcores+=("$(calc "($r1 - $r0) / $wall" "%.2f")")
        dead+=("$(rcli XLEN "${REDIS_PREFIX}dead")")
        [ "${left:-1}" = 0 ] || { say "   !! $left jobs still queued after 120 s"; rcli DEL "${REDIS_PREFIX}jobs" > /dev/null; }
    done
    stop wb
    local mw mc mcps mco msc mrc mcon tps what
    mw=$(median "${walls[@]}"); mc=$(median "${chs[@]}"); mcps=$(median "${cps[@]}")
    mco=$(median "${cores[@]}"); msc=$(median "${scores[@]}"); mrc=$(median "${rcores[@]}"); mcon=$(median "${conc[@]}")
    tps=$(calc "$jobs * $tokens / $mw")
    if [ "$delay" -gt 0 ]; then
        what="$mcon streams at once; $(fmt_int "$mc") chunks in $mw s = $(fmt_int "$mcps") chunks/s, $(fmt_int "$tps") tokens/s ($(fmt_int $((jobs * 1000 / delay))) tokens/s offered)"
    else # the worker coalesces what one read brings: chunks/s means little here
        what="$(fmt_int "$jobs") answers in $mw s = $(fmt_int "$(calc "$jobs / $mw")") answers/s, $(fmt_int "$tps") tokens/s in $(fmt_int "$mc") chunks; up to $mcon streams at once"
    fi
    row "(5) worker, $label" \
        "$jobs jobs × @@tokens=$tokens @@delay=$delay ms, --worker-concurrency $jobs, 1 worker process, answers published to a channel without subscribers" \
        "$what; CPU: worker $mco cores, stand-in $msc, Redis $mrc; dead letters: $(sum "${dead[@]}")" \
        "$(runs_label "$runs")" \
        "\"jobs\":$jobs,\"tokens\":$tokens,\"delay_ms\":$delay,\"max_concurrent\":$(jn "$mcon"),\"chunks\":$(jn "$mc"),\"wall_s\":$(jn "$mw"),\"chunks_per_s\":$(jn "$mcps"),\"tokens_per_s\":$(jn "$tps"),\"worker_cores\":$(jn "$mco"),\"standin_cores\":$(jn "$msc"),\"redis_cores\":$(jn "$mrc"),\"dead_letters\":$(sum "${dead[@]}")"
}

scenario_worker() {
    say "== (5) worker: concurrent streams, chunks/s and CPU of one worker process"
    if [ "$QUICK" = 1 ]; then
        worker_runs 500 100 50 1 "500 streams at 20 tokens/s each"
        worker_runs 500 200 0 1 "no token delay"
    else
        worker_runs 2000 100 50 "$RUNS" "2,000 streams at 20 tokens/s each"
        worker_runs 2000 200 20 "$RUNS" "2,000 streams at 50 tokens/s each"
        worker_runs 2000 200 0 "$RUNS" "no token delay"
    fi
}

# ---- (9) users end to end ---------------------------------------------------------

# users_run URL LABEL: N clients each ask their own question and stream their
# own answer through the whole pipeline; latency = worker's frame "ts" ->
# client; CPU of each program over the run.
users_run() {
    local url=$1 label=$2 r line c1 t0 t1 wall prog p
    local n=$USERS_N tokens=$USERS_TOKENS delay=$USERS_DELAY
    local l50=() l99=() done_=() dis=() walls=() self=()
    local -A cores=()
    local progs="worker:$(pid_of wu) stand-in:$(pid_of standin) ws-push:$(pid_of ws1) redis:$(pid_of redis)"
    [ -n "${3:-}" ] && progs="$progs lighttpd:$3"
    for r in $(seq 1 "$RUNS"); do
        declare -A b=()
        for prog in $progs; do b[${prog%%:*}]=$(cpu_s "${prog#*:}"); done
        t0=$(now_s)
        line=$("$BIN/wsload" --url "$url" --connections "$n" --connect-window 256 \
            --ask "bench users @@tokens=$tokens @@delay=$delay" --expect-done 1 --duration 180 \
            2>> "$T/users.err" | tail -1)
        t1=$(now_s); wall=$(calc "$t1 - $t0" "%.3f")
        for prog in $progs; do
            p=${prog%%:*}; c1=$(cpu_s "${prog#*:}")
            cores[$p]="${cores[$p]:-} $(calc "($c1 - ${b[$p]}) / $wall" "%.2f")"
        done
        unset b
        [ -n "$line" ] || continue
        l50+=("$(jget lat_p50_us "$line")"); l99+=("$(jget lat_p99_us "$line")")
        done_+=("$(jget satisfied "$line")"); dis+=("$(jget disorder "$line")")
        walls+=("$(jget elapsed_s "$line")"); self+=("$(jget self_cores "$line")")
    done
    if [ ${#l50[@]} -eq 0 ]; then
        row "(9) users, $label" "$n clients" "failed: $(tail -2 "$T/users.err" | tr '\n' ' ')" "$(runs_label "$RUNS")" "\"clients\":$n"
        return
    fi
    local cpu="" cj=""
    for prog in $progs; do
        p=${prog%%:*}
        # shellcheck disable=SC2086
        cpu="$cpu, $p $(median ${cores[$p]})"
        cj="$cj,\"${p//-/_}_cores\":$(jn "$(median ${cores[$p]})")"
    done
    local m50 m99 mw
    m50=$(median "${l50[@]}"); m99=$(median "${l99[@]}"); mw=$(median "${walls[@]}")
    row "(9) users end to end, $label" \
        "$n WebSocket clients, each asks 'bench users @@tokens=$tokens @@delay=$delay' at once and streams its own answer; 1 worker (--worker-concurrency $n), 1 ws-push" \
        "answers complete: $(echo "${done_[*]}" | sed 's/ /, /g') of $n; frames out of order: $(sum "${dis[@]}"); chunk latency (worker's frame ts -> client) p50 $(ms "$m50") ms, p99 $(ms "$m99") ms; all done after $mw s (ideal $(calc "$tokens * $delay / 1000" "%.1f") s); CPU: load client $(median "${self[@]}")$cpu" \
        "$(runs_label "$RUNS")" \
        "\"clients\":$n,\"tokens\":$tokens,\"delay_ms\":$delay,\"complete\":$(sum "${done_[@]}"),\"disorder\":$(sum "${dis[@]}"),\"lat_p50_us\":$(jn "$m50"),\"lat_p99_us\":$(jn "$m99"),\"wall_s\":$(jn "$mw"),\"client_cores\":$(jn "$(median "${self[@]}")")$cj"
}

scenario_users() {
    USERS_N=2000 USERS_TOKENS=200 USERS_DELAY=20
    [ "$QUICK" = 1 ] && USERS_N=200 USERS_TOKENS=50
    say "== (9) users: each WebSocket client asks its own question and streams its own private answer (ws-push -> Redis -> worker -> model -> Redis -> ws-push)"
    start_worker wu --worker-concurrency "$USERS_N"
    users_run "$WS1" "clients on ws-push"
    users_run "ws://127.0.0.1:$PORT/ws" "clients through lighttpd's /ws proxy" "$(cat "$T/run/lighttpd.pid")"
    stop wu
}

# ---- (10) many connections across instances -------------------------------------------

# (issue 18 item 3) MANY_TOTAL connections (100,000) held by several ws-push
# sharing one port (ws_processes; a process may hold 20,000 descriptors
# here), opened by several wsload processes; then /api/status must count
# them exactly, and one frame PUBLISHed on P out:all must reach every one.
# Pings at the default 30 s (MANY_PING sets another interval): 3,300 a
# second over 100k connections. (When lws sent them, each one a timer of its
# own and a turn of the loop over every descriptor, that did not fit on 2
# cores: 75k of 100k connected after 300 s; ws-push/keepalive.c.)
scenario_many() {
    local total=${MANY_TOTAL:-100000} per=14000 k port wsp procs names="" pids="" rss0 rss1 t0 r
    [ "$QUICK" = 1 ] && total=12000 per=4000
    procs=$(( (total + per - 1) / per )); wsp=$procs
    say "== (10) many connections: $(fmt_int "$total") WebSockets over $wsp ws-push sharing one port, from $procs load processes; /api/status, RSS, one broadcast to all"
    port=$(free_port)
    # (start_wspush_on and wait_until set i, n and port: loops here use k)
    for k in $(seq 1 "$wsp"); do
        start_wspush_on "m$k" "$port" --ws-processes "$wsp" \
            --ws-ping-interval "${MANY_PING:-30}" --ws-idle-timeout $((4 * ${MANY_PING:-30}))
        names="$names m$k"; pids="$pids $(pid_of "m$k")"
    done
    rss0=0; for k in $pids; do rss0=$((rss0 + $(rss_kib "$k"))); done
    local left=$total n
    for k in $(seq 1 "$procs"); do
        n=$(( left < per ? left : per )); left=$((left - n))
        "$BIN/wsload" --url "ws://127.0.0.1:$port/ws" --connections "$n" --sources 16 --connect-window 128 \
            --expect-frames 1 --duration 600 --raw 1 > "$T/many$k.json" 2> "$T/many$k.err" &
        eval "MANY_PID_$k=$!"
    done
    count() { curl -s "$API/api/status" | sed -n 's/.*"connectionCount":\([0-9]*\).*/\1/p'; }
    t0=$(now_s)
    local seen=0 connect_s
    while [ "$(calc "($(now_s) - $t0 < 300)" "%d")" = 1 ]; do
        seen=$(count); [ "${seen:-0}" -ge "$total" ] && break
        sleep 1
    done
    connect_s=$(calc "$(now_s) - $t0" "%.1f")
    sleep 3 # presence is refreshed on a tick: let a count above the total show
    seen=$(count)
    rss1=0; local spread=""
    for k in $pids; do r=$(rss_kib "$k"); rss1=$((rss1 + r)); done
    for k in $names; do spread="$spread $(rcli GET "${REDIS_PREFIX}wspush:$k" 2> /dev/null)"; done
    local ts; ts=$(calc "$(date +%s%N) / 1000" "%.0f")
    rcli PUBLISH "${REDIS_PREFIX}out:all" "{\"type\":\"text\",\"id\":\"many-$$\",\"seq\":0,\"content\":\"to all\",\"ts\":$ts}" > /dev/null
    local got=0 maxlat=0 est=0 l
    for k in $(seq 1 "$procs"); do
        wait "$(eval echo \$MANY_PID_$k)"
        l=$(tail -1 "$T/many$k.json")
        got=$((got + $(jget satisfied "$l"))); est=$((est + $(jget established "$l")))
        [ "$(jget lat_max_us "$l")" -gt "$maxlat" ] && maxlat=$(jget lat_max_us "$l")
    done
    for k in $names; do stop "$k"; done
    local per_conn; per_conn=$(calc "($rss1 - $rss0) / $total" "%.2f")
    row "(10) many connections" \
        "$(fmt_int "$total") WebSockets, $wsp ws-push on one port (ws_processes $wsp, pings every ${MANY_PING:-30} s), $procs wsload --raw processes from 16 source addresses" \
        "established $(fmt_int "$est") in $connect_s s; /api/status connectionCount $seen; ws-push RSS $(calc "$rss1 / 1024" "%.0f") MiB, $per_conn KiB per connection (per instance:$spread connections); one broadcast frame reached $(fmt_int "$got") of them, the last $(ms "$maxlat") ms after it was published" \
        "1 run" \
        "\"connections\":$total,\"established\":$est,\"status_count\":$(jn "$seen"),\"rss_kib_per_conn\":$(jn "$per_conn"),\"broadcast_reached\":$got,\"broadcast_last_us\":$(jn "$maxlat")"
}

# ---- (6) Redis ceiling ----------------------------------------------------------

scenario_redis() {
    say "== (6) Redis ceiling: redis-benchmark PUBLISH of a $FRAME_BYTES-byte payload (no subscriber)"
    local payload r rps1=() rps16=() n=200000
    [ "$QUICK" = 1 ] && n=50000
    payload=$(head -c "$FRAME_BYTES" /dev/zero | tr '\0' x)
    for r in $(seq 1 "$RUNS"); do
        rps1+=("$(redis-benchmark -p "$REDIS_PORT" -n "$n" -q PUBLISH benchch "$payload" 2>&1 | tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)")
        rps16+=("$(redis-benchmark -p "$REDIS_PORT" -n "$n" -P 16 -q PUBLISH benchch "$payload" 2>&1 | tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)")
    done
    local m1 m16
    m1=$(median "${rps1[@]}"); m16=$(median "${rps16[@]}")
    row "(6) Redis PUBLISH ceiling" \
        "redis-benchmark -n $n -q PUBLISH ch <$FRAME_BYTES B> (50 clients), without and with -P 16" \
        "$(fmt_int "$m1") PUBLISH/s; pipelined -P 16: $(fmt_int "$m16") PUBLISH/s" \
        "$(runs_label "$RUNS")" \
        "\"publish_per_s\":$(jn "$m1"),\"publish_per_s_pipelined16\":$(jn "$m16"),\"requests\":$n"
}

# ---- (7) cancel ----------------------------------------------------------------

# From POST /api/cancel to the worker stopping the model call: each answer
# streams (stand-in, 20 ms between tokens) when it is cancelled; the end is
# the worker's log line "... model call stopped" (told by P cancels, or by
# its next frame being refused, whichever comes first; both clocks in ms).
scenario_cancel() {
    say "== (7) cancel: from POST /api/cancel to the worker stopping the model call"
    local count=20 i k id t0 tl line lat=()
    [ "$QUICK" = 1 ] && count=5
    start_worker wc
    for i in $(seq 1 "$count"); do
        id=$(curl -s -H 'Content-Type: application/json' \
            -d '{"content":"bench cancel @@tokens=100000 @@delay=20"}' "$API/api/message" |
            sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
        for k in $(seq 1 100); do
            curl -s "$API/api/answer/$id" | grep -q '"status":"streaming"' && break
            sleep 0.05
        done
        t0=$(date +%s%3N)
        curl -s -H 'Content-Type: application/json' -d "{\"id\":\"$id\"}" "$API/api/cancel" > /dev/null
        line=""
        for k in $(seq 1 100); do
            line=$(grep "job $id: .*model call stopped" "$T/wc.out" | head -1)
            [ -n "$line" ] && break
            sleep 0.05
        done
        [ -n "$line" ] || continue
        tl=$(date -d "${line%% *}" +%s%3N)
        lat+=("$((tl - t0))")
    done
    stop wc
    local m mx
    m=$(median "${lat[@]}")
    mx=$(printf '%s\n' "${lat[@]}" | sort -n | tail -1)
    row "(7) cancel latency" \
        "$count answers streaming (20 ms between tokens), each cancelled by POST /api/cancel through lighttpd; until the worker's log says the model call stopped" \
        "median ${m:--} ms, max ${mx:--} ms (${#lat[@]} of $count measured)" \
        "$count cancels" \
        "\"cancels\":$count,\"measured\":${#lat[@]},\"latency_median_ms\":$(jn "$m"),\"latency_max_ms\":$(jn "$mx")"
}

# ---- (8) what authentication costs --------------------------------------------------

# The same requests and handshakes with authentication off and on (an HS256
# token verified by libjwt on every request and upgrade), in one run.
scenario_auth() {
    say "== (8) authentication: POST /api/message and WebSocket handshakes, off and on"
    local secret token
    secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    token=$(AUTH_JWT_SECRET=$secret "$BIN/aimsg-token" --sub bench --ttl 3600) || { say "   aimsg-token failed"; return; }
    wrk_runs "POST /api/message, authentication off" /api/message -s "$BENCH_ROOT/bench/post.lua"
    rcli DEL "${REDIS_PREFIX}jobs" > /dev/null
    stop_lighttpd
    AUTH_JWT_SECRET=$secret start_lighttpd
    wrk_runs "POST /api/message, authentication on (Authorization: Bearer, HS256)" /api/message \
        -s "$BENCH_ROOT/bench/post.lua" -H "Authorization: Bearer $token"
    rcli DEL "${REDIS_PREFIX}jobs" > /dev/null
    stop_lighttpd
    start_lighttpd
    local conns=5000 mode url line est cs
    [ "$QUICK" = 1 ] && conns=2000
    for mode in off on; do
        if [ "$mode" = on ]; then
            start_wspush wsa --auth-jwt-secret "$secret"
            url="ws://127.0.0.1:$WS_PORT_wsa/ws?token=$token"
        else
            start_wspush wsa
            url="ws://127.0.0.1:$WS_PORT_wsa/ws"
        fi
        local rates=() r
        for r in $(seq 1 "$RUNS"); do
            line=$("$BIN/wsload" --url "$url" --connections "$conns" --sources 16 --connect-window 256 \
                --hold 0 --duration 60 2> /dev/null | tail -1)
            est=$(jget established "$line"); cs=$(jget connect_s "$line")
            [ -n "$est" ] && rates+=("$(calc "$est / ($cs > 0 ? $cs : 1)")")
            sleep 1
        done
        stop wsa
        local m
        m=$(median "${rates[@]}")
        row "(8) WebSocket handshakes, authentication $mode" \
            "$conns connections to one ws-push, 16 source addresses$([ "$mode" = on ] && echo ", token in the URL (HS256)")" \
            "$(fmt_int "$m") handshakes/s" "$(runs_label "$RUNS")" \
            "\"auth\":\"$mode\",\"connections\":$conns,\"handshakes_per_s\":$(jn "$m")"
    done
}

# ---- run them ------------------------------------------------------------------------

# BENCH_ONLY="http worker": only those scenarios (connections fanout share paced e2e http worker redis cancel auth users many)
ONLY=${BENCH_ONLY:-connections fanout share paced e2e http worker redis cancel auth users many}
wanted() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
wanted connections && scenario_connections
wanted fanout && scenario_fanout
wanted share && scenario_share
wanted paced && scenario_paced
if wanted e2e; then start_worker w1; scenario_e2e; stop w1; fi
wanted http && scenario_http
wanted worker && scenario_worker
wanted redis && scenario_redis
wanted cancel && scenario_cancel
wanted auth && scenario_auth
wanted users && scenario_users
wanted many && scenario_many
ELAPSED=$(( $(date +%s) - START ))

# did everything we started live through it?
DIED=""
for d in redis standin ws1; do
    kill -0 "$(pid_of "$d")" 2> /dev/null || DIED="$DIED $d"
done
[ -f "$T/run/lighttpd.pid" ] && kill -0 "$(cat "$T/run/lighttpd.pid")" 2> /dev/null || DIED="$DIED lighttpd"
[ -n "$DIED" ] && SKIPPED="${SKIPPED:+$SKIPPED; }died during the run:$DIED (logs in $T, kept)" && KEEP=1

# ---- the table -------------------------------------------------------------------------

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOST=$(hostname -s 2> /dev/null || hostname)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
CORES=$(nproc)
MEM=$(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
KERNEL=$(uname -r)
REDIS_V=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
LIGHTTPD_V=$(lighttpd -v 2> /dev/null | head -1 | sed 's/ - .*//')
LWS_V=$(pkg-config --modversion libwebsockets 2> /dev/null)

echo
echo "aimsg benchmark: $DATE on $HOST: $CORES × $CPU, $MEM, Linux $KERNEL; fd limit $FD_LIMIT"
echo "build: $BUILD_FLAGS; redis $REDIS_V (appendonly, fsync everysec), $LIGHTTPD_V, libwebsockets $LWS_V; $ELAPSED s; all traffic on loopback; command: make bench"
echo
[ -n "${SKIPPED:-}" ] && echo "Note: $SKIPPED." && echo
echo "| Scenario | Parameters | Result | Runs |"
echo "|---|---|---|---|"
while IFS="$(printf '\t')" read -r s p r n; do
    printf '| %s | %s | %s | %s |\n' "$s" "$p" "$r" "$n"
done < "$ROWS"

[ -n "${BENCH_ONLY:-}" ] && exit 0
mkdir -p "$OUT_DIR"
FILE=$OUT_DIR/$(date -u +%Y-%m-%dT%H%M%SZ)-$HOST.json
{
    printf '{"date":%s,"host":%s,"cpu":%s,"cores":%s,"memory":%s,"kernel":%s,"fd_limit":%s,' \
        "$(js "$DATE")" "$(js "$HOST")" "$(js "$CPU")" "$CORES" "$(js "$MEM")" "$(js "$KERNEL")" "$FD_LIMIT"
    printf '"note":%s,"build_flags":%s,"redis":%s,"lighttpd":%s,"libwebsockets":%s,"fcgi_procs":%s,"runs":%s,"quick":%s,"elapsed_s":%s,"command":"make bench",\n"scenarios":[\n' \
        "$(js "${SKIPPED:-}")" "$(js "$BUILD_FLAGS")" "$(js "$REDIS_V")" "$(js "$LIGHTTPD_V")" "$(js "$LWS_V")" "$FCGI_PROCS" "$RUNS" \
        "$([ "$QUICK" = 1 ] && echo true || echo false)" "$ELAPSED"
    sed '$!s/$/,/' "$JROWS"
    printf ']}\n'
} > "$FILE.tmp" && mv "$FILE.tmp" "$FILE"
echo
echo "written to ${FILE#$BENCH_ROOT/}"
exit 0

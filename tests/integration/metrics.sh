#!/bin/bash
# metrics.sh -- observability against real parts: a real Prometheus (the
# example config of deploy/prometheus) scrapes the web server's
# /api/metrics while the stack answers a known workload; promtool checks
# the exposition; an instance killed drops out; one job's id traces its
# life through the logs of the three programs; JSON log lines parse.
set -u
. "$(dirname "$0")/../lib.sh"

export METRICS_INTERVAL_MS=300 LOG_FORMAT=json STANDIN_DELAY_MS=2
start_redis
start_standin
start_worker w1
start_wspush ws1
start_wspush ws2
start_lighttpd

# ---- Prometheus, with the example config -----------------------------------
PROM_PORT=$(free_port)
sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" -e "s/scrape_interval: 15s/scrape_interval: 1s/" \
    "$ROOT/deploy/prometheus/prometheus.yml" > "$T/prometheus.yml"
check "promtool accepts the example scrape config" promtool check config "$T/prometheus.yml"
spawn prometheus prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn
PROM="http://127.0.0.1:$PROM_PORT"
wait_until 30 curl -fs "$PROM/-/ready" || { fail "prometheus starts" "$(tail -5 "$T/prometheus.out")"; exit 1; }

# query EXPR: the first value of an instant query, or "none"
query() {
    curl -s --get "$PROM/api/v1/query" --data-urlencode "query=$1" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).data.result;console.log(r.length?r[0].value[1]:"none")})'
}
wait_query() { # wait_query SECONDS EXPR EXPECTED
    local end=$(( $(date +%s) + $1 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        [ "$(query "$2")" = "$3" ] && return 0
        sleep 0.5
    done
    return 1
}

check "Prometheus scrapes the web server's /api/metrics" wait_query 20 'up{job="aimsg"}' 1
check "every program is in the exposition" wait_query 10 \
    'count(count by (program) (process_resident_memory_bytes))' 3

# ---- a known workload -----------------------------------------------------------
N=6
before_done=$(query 'sum(aimsg_answers_total{outcome="done"}) or vector(0)')
before_http=$(query 'sum(aimsg_http_requests_total{route="/api/message",code="200"}) or vector(0)')
listen a "ws://127.0.0.1:$WS_PORT_ws1/ws" --wait 1000 --timeout 60
listen b "ws://127.0.0.1:$WS_PORT_ws2/ws" --wait 1000 --timeout 60
ids=""
for i in $(seq 1 $N); do
    out=$(http POST /api/message -H 'Content-Type: application/json' -d "{\"content\":\"metrics $i\"}")
    ids="$ids $(printf '%s' "$out" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
done
check "the clients got the answers" \
    wait_until 20 sh -c "[ \$(grep -c '\"type\":\"done\"' $T/a.out) -ge $N ]"
wsclient --url "ws://127.0.0.1:$WS_PORT_ws1/ws" --send '{"type":"text","content":"traced"}' \
    --wait 1 --timeout 20 > "$T/traced.out"
ws_id=$(sed -n 's/.*"type":"queued","id":"\([^"]*\)".*/\1/p' "$T/traced.out")

check "answers_total{outcome=done} rose by the answers given" \
    wait_query 20 "sum(aimsg_answers_total{outcome=\"done\"}) - $before_done" $((N + 1))
check "http_requests_total{route=/api/message,code=200} rose by the messages posted" \
    wait_query 10 "sum(aimsg_http_requests_total{route=\"/api/message\",code=\"200\"}) - $before_http" $N
check "jobs_queued_total counts the HTTP and the WebSocket job" \
    wait_query 10 'sum(aimsg_jobs_queued_total{via="http"}) * 100 + sum(aimsg_jobs_queued_total{via="websocket"})' $((N * 100 + 1))
check "the first-token histogram counted every model call" \
    wait_query 10 'sum(aimsg_model_first_token_seconds_count)' $((N + 1))
check "the answer-duration histogram too" \
    wait_query 10 'sum(aimsg_answer_duration_seconds_count)' $((N + 1))
check "chunks were published" wait_query 10 'sum(aimsg_chunks_published_total) > bool 0' 1
check "ws-push ws1 has its clients open (gauge)" \
    wait_query 10 'aimsg_ws_connections{instance="ws1"}' 1
check "frames sent to WebSocket clients are counted" \
    wait_query 10 'sum(aimsg_ws_frames_sent_total) > bool 0' 1
check "the jobs stream length is shown" wait_query 10 'aimsg_jobs_stream_length' 0
check "each process reports its open descriptors" \
    wait_query 10 'count(process_open_fds > 0)' "$(query 'count(process_resident_memory_bytes)')"

# ---- failures, by class -------------------------------------------------------------
http POST /api/message -H 'Content-Type: application/json' -d '{"content":"fail @@fail=503*1"}' > /dev/null
http POST /api/message -H 'Content-Type: application/json' -d '{"content":"cut @@tokens=5 @@cut=2"}' > /dev/null
check "a 503 from the model is counted with its status" \
    wait_query 20 'sum(aimsg_model_errors_total{class="http",code="503"})' 1
check "... the call tried again" wait_query 10 'sum(aimsg_jobs_retried_total) >= bool 1' 1
check "a stream cut after tokens is counted as cut" \
    wait_query 10 'sum(aimsg_model_errors_total{class="cut"})' 1
check "... and its answer as an error" wait_query 10 'sum(aimsg_answers_total{outcome="error"})' 1
http POST /api/message -H 'Content-Type: application/json' -d '{"content":"@@nostreamoptions x"}' > /dev/null
# (done since the workload: its N + 1, the 503 once retried, and this one)
check "an endpoint refusing stream_options is asked again without it: answered" \
    wait_query 20 "sum(aimsg_answers_total{outcome=\"done\"}) - $before_done" $((N + 3))
expect_eq "... and that 400 is not counted as a model error" 0 \
    "$(query 'sum(aimsg_model_errors_total{code="400"}) or vector(0)')"

# ---- the exposition itself ------------------------------------------------------
curl -s "$API/api/metrics" > "$T/metrics.txt"
check "promtool check metrics passes on the exposition" sh -c "promtool check metrics < $T/metrics.txt"
expect_match "it is served as the text format" "text/plain; version=0.0.4" \
    "$(curl -s -o /dev/null -w '%{content_type}' "$API/api/metrics")"
check "every sample names its program and instance" \
    sh -c "! grep -v '^#' $T/metrics.txt | grep -v 'program=\"[a-z-]*\",instance=\"' | grep -v '^aimsg_jobs_stream_length\|^aimsg_dead_jobs_stream_length' | grep ."

# ---- an instance that dies drops out ----------------------------------------------
check "ws2 is in the exposition" grep -q 'instance="ws2"' "$T/metrics.txt"
stop ws2 KILL
check "a killed ws-push drops out of the exposition (its hash expires)" \
    wait_until 10 sh -c "! curl -s $API/api/metrics | grep -q 'instance=\"ws2\"'"

# ---- one trace per job ------------------------------------------------------------
http_id=${ids%% *}; http_id=${ids# }; http_id=${http_id%% *}
trace() { grep -h "\"job\":\"$1\"" "$LOG_DIR"/*.log; }
expect_match "an HTTP job: queued in fcgi-api" '"program":"fcgi-api".*"message":"queued by addr:127.0.0.1' "$(trace "$http_id")"
expect_match "... taken by the worker" '"program":"worker".*"message":"taken by ' "$(trace "$http_id")"
expect_match "... its first token" '"program":"worker".*"message":"first token after ' "$(trace "$http_id")"
expect_match "... done and acknowledged" '"program":"worker".*"message":"done after [0-9]* chunk.*acknowledged' "$(trace "$http_id")"
expect_match "a WebSocket job: queued in ws-push" '"program":"ws-push".*"message":"queued by addr:127.0.0.1 on client' "$(trace "$ws_id")"
expect_match "... and answered by the worker" '"message":"done after' "$(trace "$ws_id")"
check "grep finds the job in the day's log file (text of its id)" grep -q "$ws_id" "$LOG_DIR"/*.log

# ---- JSON logs ---------------------------------------------------------------------
check "every log line is one JSON object with time, level, program, pid, message" node -e '
  const fs = require("fs"), dir = process.argv[1];
  let n = 0;
  for (const f of fs.readdirSync(dir)) for (const l of fs.readFileSync(dir + "/" + f, "utf8").split("\n")) {
    if (!l) continue;
    const o = JSON.parse(l); n++;
    for (const k of ["time", "level", "program", "pid", "message"]) if (!(k in o)) throw new Error(k + " missing: " + l);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(o.time)) throw new Error("time: " + l);
  }
  if (n < 10) throw new Error("only " + n + " lines");' "$LOG_DIR"

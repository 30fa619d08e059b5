# The bench's load client (bench/wsload.c) counts what ws-push sends: with
# lws' client and with its own (--raw 1, epoll and a frame parser of its
# own), every connection gets every frame of a published answer, small
# frames and 70 kB ones (64-bit length, cut across reads), each with its
# latency sample; the raw client answers ws-push's pings, so a silent
# connection outlives ws_idle_timeout.
. "$(dirname "$0")/../lib.sh"

start_redis
start_wspush ws1 --ws-ping-interval 1 --ws-idle-timeout 3
URL="ws://127.0.0.1:$WS_PORT_ws1/ws"
publish() {     # publish BYTES [FLAGS...]: 20 clients, 30 frames + done
    b=$1; shift
    "$BIN/wsload" --url "$URL" --connections 20 --sources 4 --publish "redis://127.0.0.1:$REDIS_PORT" \
        --channel "${REDIS_PREFIX}out:all" --frames 30 --frame-bytes "$b" --expect-done 1 \
        --duration 30 "$@" 2> "$T/wsload.err" | tail -1 |
        jq -r '"\(.established) \(.frames) \(.done) \(.satisfied) \(.closed_early) \(.lat_samples)"'
}
for client in lws raw; do
    flags=""
    [ $client = raw ] && flags="--raw 1"
    for bytes in 100 70000; do
        # shellcheck disable=SC2086
        expect_eq "$client client, $bytes-byte frames: 20 up, 20 x 31 frames, 20 done, none closed, 620 samples" \
            "20 620 20 20 0 620" "$(publish $bytes $flags)"
    done
done

out=$("$BIN/wsload" --url "$URL" --connections 5 --hold 6 --raw 1 2> "$T/hold.err" | tail -1)
expect_eq "raw client: 5 silent connections held 6 s (pings every 1 s, idle timeout 3 s) stay open" \
    "5 0" "$(printf '%s' "$out" | jq -r '"\(.established) \(.closed_early)"')"
out=$("$BIN/wsload" --url "ws://127.0.0.1:$WS_PORT_ws1/nosuch" --connections 3 --raw 1 2>&1 | tail -1)
expect_eq "raw client: a refused upgrade counts as failed" "0 3" \
    "$(printf '%s' "$out" | jq -r '"\(.established) \(.failed)"')"

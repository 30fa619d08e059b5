# ws-push at its edges: it listens only on the address configured, bounds
# the memory held by half-received messages, closes a client that breaks
# the framing rules, and stays counted while Redis refuses writes.
. "$(dirname "$0")/../lib.sh"

start_redis
listening() {   # listening PORT: the local addresses listening on PORT
    ss -Hltn "sport = :$1" | awk '{print $4}' | sort | tr '\n' ' '
}

# -- bind: exactly the address configured
start_wspush ws1    # bind defaults to 127.0.0.1
expect_eq "bind 127.0.0.1 listens on 127.0.0.1 only" "127.0.0.1:$WS_PORT_ws1 " "$(listening "$WS_PORT_ws1")"
port=$(free_port)
spawn ws2 "$BIN/ws-push" --ws-port "$port" --instance-id ws2 --bind 127.0.0.2
check "bind 127.0.0.2 is reachable on 127.0.0.2" wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.2/$port"
check "bind 127.0.0.2 is not reachable on 127.0.0.1" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
expect_eq "bind 127.0.0.2 listens on 127.0.0.2 only" "127.0.0.2:$port " "$(listening "$port")"
stop ws2
if [ -r /proc/net/if_inet6 ] && grep -q '^0*1 ' /proc/net/if_inet6; then
    port=$(free_port)
    spawn ws6 "$BIN/ws-push" --ws-port "$port" --instance-id ws6 --bind ::1
    wait_until 10 sh -c "ss -Hltn 'sport = :$port' | grep -q ."
    expect_eq "bind ::1 listens on [::1] only" "[::1]:$port " "$(listening "$port")"
    stop ws6
fi
out=$("$BIN/ws-push" --ws-port "$(free_port)" --bind 192.0.2.1 2>&1); rc=$?
expect_eq "an address not on this host stops ws-push" 1 "$rc"
expect_match "and says why" "cannot listen on 192.0.2.1:[0-9]+ .*Cannot assign requested address" "$out"
out=$("$BIN/ws-push" --ws-port "$WS_PORT_ws1" 2>&1); rc=$?
expect_eq "a port in use stops ws-push" 1 "$rc"
expect_match "and says why" "cannot listen on 127.0.0.1:$WS_PORT_ws1 .*Address already in use" "$out"

# -- presence while Redis refuses writes (out of memory, noeviction)
start_wspush ws3 --presence-ttl 3
listen p1 "ws://127.0.0.1:$WS_PORT_ws3/ws" --timeout 60
check "presence counts the client" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT GET ${REDIS_PREFIX}wspush:ws3) = 1 ]"
rcli CONFIG SET maxmemory-policy noeviction > /dev/null
rcli CONFIG SET maxmemory 1 > /dev/null
expect_match "Redis refuses writes" "^OOM" "$(rcli SET "${REDIS_PREFIX}probe" x 2>&1)"
listen p2 "ws://127.0.0.1:$WS_PORT_ws3/ws" --timeout 60
sleep 5     # longer than presence_ttl: the key lives only if ws-push kept it alive
expect_eq "the instance still counts, with its last count written" 1 "$(rcli GET "${REDIS_PREFIX}wspush:ws3")"
check "the instance is still registered" sh -c "redis-cli -p $REDIS_PORT SISMEMBER ${REDIS_PREFIX}wspush ws3 | grep -qx 1"
rcli CONFIG SET maxmemory 0 > /dev/null
check "once Redis takes writes again the count is right" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT GET ${REDIS_PREFIX}wspush:ws3) = 2 ]"
stop p1; stop p2; stop ws3

# -- half-received messages share one budget; the largest holder is closed
# Capacities double from 64 bytes: a 700 kB message holds 1 MiB, a 300 kB
# one 512 KiB, so the two together are over a budget of 1 MiB and the
# first is the largest whenever that happens.
start_wspush ws4 --ws-partial-budget-bytes 1048576
WS4="ws://127.0.0.1:$WS_PORT_ws4/ws"
{ cat "$ROOT/tests/fixtures/pixel.png"; head -c 525000 /dev/zero; } > "$T/700k.png"   # 700 kB in base64
head -c 225000 /dev/zero > "$T/300k.bin"
out=$(wsclient --url "$WS4" --send-image "$T/700k.png" --fragment 65536 --send '{"type":"text","content":"x"}' --timeout 5)
expect_match "a 700 kB message alone is within the budget and read" '"type":"queued"' "$out"
listen big "$WS4" --send-image "$T/700k.png" --fragment 65536 --unfinished --timeout 60
check "the big unfinished message is sent" wait_until 10 grep -q "^# unfinished" "$T/big.out"
listen small "$WS4" --send-image "$T/300k.bin" --fragment 65536 --unfinished --timeout 60
check "the small unfinished message is sent" wait_until 10 grep -q "^# unfinished" "$T/small.out"
check "over the budget the largest holder is closed with 1009" wait_until 10 grep -q "^# closed 1009 message too big" "$T/big.out"
check "and the reason is logged" grep -q "ws_partial_budget_bytes 1048576" "$T/ws4.out"
check "the smaller holder stays connected" sh -c "! grep -q '^# closed\|^# disconnected' $T/small.out"
out=$(wsclient --url "$WS4" --send '{"type":"text","content":"still answered"}' --timeout 5)
expect_match "the instance goes on serving" 'unavailable|queued' "$out"
stop big; stop small; stop ws4

# -- an unmasked client frame closes the connection with 1002 (RFC 6455 5.1)
# raw_ws PORT FRAME: upgrades a bare socket, sends FRAME (printf escapes) and
# prints the first 4 bytes that come back, in hex
raw_ws() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' >&3
    while IFS= read -r line <&3; do [ "$line" = $'\r' ] && break; done
    printf "$2" >&3
    timeout 5 head -c 4 <&3 | od -An -tx1 | tr -d ' \n'
    exec 3<&-
}
start_wspush ws5
expect_match "a masked frame on a bare socket is read (an error frame comes back)" '^815d' \
    "$(raw_ws "$WS_PORT_ws5" '\x81\x88\x00\x00\x00\x00not json')"
expect_eq "an unmasked frame gets close 1002" 882e03ea "$(raw_ws "$WS_PORT_ws5" '\x81\x08not json')"
expect_eq "an unmasked ping too" 882e03ea "$(raw_ws "$WS_PORT_ws5" '\x89\x00')"
check "the reason is logged" grep -q "sent an unmasked frame" "$T/ws5.out"
stop ws5

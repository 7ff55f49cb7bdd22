#!/bin/bash
# Instructions per request, counted by callgrind: repeatable whatever else
# the machine is doing, where CPU time is not. The server runs under
# callgrind; after a warm-up the counters are zeroed, a load runs, and the
# instructions of that window are divided by the replies loadgen counted.
#
#   bench/callgrind.sh BUILD_DIR SERVER MODE [SECONDS]
#     SERVER: libuv | morphd | morphd-echo | morphd-delay0
#     MODE:   tcp-rr | udp-rr
#   FRAMING=line|length|netstring|delimiter (tcp-rr): the service's framing
#   and loadgen's (default: stream for the server, loadgen's lines);
#   FRAMING=http: an http:// endpoint, each request a POST of a 64 B body;
#   FRAMING=ws: a WebSocket to it, each message a text frame of 64 B
#   SERVICE_LINES: more keys for the service (e.g. detect = tls http)
# Prints: SERVER MODE instructions_per_request requests
set -euo pipefail
B=$(cd "$1" && pwd)
server=$2
mode=$3
secs=${4:-3}
work=$(mktemp -d /tmp/morph-cg-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 12000))

listen="tcp://127.0.0.1:$port udp://127.0.0.1:$port"
framing=${FRAMING:-stream}
if [ "${FRAMING:-}" = http ] || [ "${FRAMING:-}" = ws ]; then
    listen="http://127.0.0.1:$port"
    framing=line
fi
ini() { # TRANSFORM [EXTRA]
    cat > "$work/m.ini" <<INI
[morphd]
plugin_dir = $B/plugins
log_level = warn
allow_root = yes

[service bench]
listen = $listen
transform = $1
framing = $framing
max_connections = 100000
${2:-}
${SERVICE_LINES:-}
INI
    echo "$B/morphd -c $work/m.ini"
}
case $server in
libuv) cmd="$B/bench/baseline_libuv $port" ;;
morphd) cmd=$(ini uppercase) ;;
morphd-delay0) cmd=$(ini "delay | uppercase" "delay.ms = 0") ;;
morphd-echo) cmd=$(ini "echo | uppercase") ;;
*) echo "unknown server $server" >&2; exit 64 ;;
esac
# shellcheck disable=SC2086
valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$work/cg.%p" $cmd 2>"$work/vg.log" &
pid=$!
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
args=(-c 10 -s 64)
[ -n "${FRAMING:-}" ] && [ "$mode" = tcp-rr ] && args+=(-f "$FRAMING")
"$B/bench/loadgen" "$mode" "$port" -d 1 "${args[@]}" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
out=$("$B/bench/loadgen" "$mode" "$port" -d "$secs" "${args[@]}")
callgrind_control -d "$pid" >/dev/null 2>&1
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
req=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
# the first dump (cg.PID.1) holds what ran since the counters were zeroed
ir=$(grep -h '^summary:' "$work"/cg.*.1 | awk '{print $2}')
[ -n "${KEEP:-}" ] && cp "$work"/cg.*.1 "$KEEP"
awk -v s="$server" -v m="$mode" -v ir="$ir" -v r="$req" \
    'BEGIN { printf "%s %s %.0f %d\n", s, m, ir / r, r }'

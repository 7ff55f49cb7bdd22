#!/bin/bash
# Instructions per ECHO under redis-benchmark, counted by callgrind, for
# morphd (transform = echo, framing = resp) and Debian's redis-server on
# the same load: 50 clients, a 64 B argument, a pipeline of PIPELINE. A
# count, as bench/callgrind.sh's: what the noise of CPU time cannot show.
#
#   bench/callgrind_resp.sh BUILD_DIR redis|morphd [PIPELINE]
# Prints: SERVER pipeline N: I instructions per request
set -euo pipefail
B=$(cd "$1" && pwd)
server=$2
pl=${3:-1}
work=$(mktemp -d /tmp/morph-cgr-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 12000))
if [ "$server" = redis ]; then
    cmd=(redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no)
else
    cat > "$work/m.ini" <<INI
[morphd]
plugin_dir = $B/plugins
log_level = warn
allow_root = yes

[service bench]
listen = tcp://127.0.0.1:$port
transform = echo
framing = resp
INI
    cmd=("$B/morphd" -c "$work/m.ini")
fi
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "${cmd[@]}" > "$work/vg.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
arg=$(printf 'x%.0s' $(seq 64))
redis-benchmark -p "$port" -c 50 -n 5000 -P "$pl" -q ECHO "$arg" > /dev/null 2>&1
callgrind_control -z "$pid" > /dev/null 2>&1
n=20000
redis-benchmark -p "$port" -c 50 -n "$n" -P "$pl" -q ECHO "$arg" > /dev/null 2>&1
callgrind_control -d "$pid" > /dev/null 2>&1
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
# every thread's part of the window (redis-server has threads of its own)
ir=$(grep -h '^summary:' "$work"/cg.*.1 | awk '{s += $2} END {print s}')
awk -v s="$server" -v p="$pl" -v i="$ir" -v n="$n" \
    'BEGIN { printf "%s pipeline %s: %.0f instructions per request\n", s, p, i / n }'
